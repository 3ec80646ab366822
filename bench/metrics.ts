/** The metrics a row can carry: unit, which direction is better, and what it means (for the report). */
export const METRICS = {
  deliveries_per_s: {
    unit: 'msg/s',
    better: 'higher',
    about: 'messages delivered to clients / wall seconds from the first send until the last client has everything',
  },
  server_cpu_us_per_delivery: {
    unit: 'µs',
    better: 'lower',
    about: 'server process user+system CPU over the scenario / messages delivered',
  },
  wire_bytes_per_delivery: {
    unit: 'B',
    better: 'lower',
    about: 'bytes the clients read from their sockets while the messages arrived (frame headers included, TCP/IP not) / messages delivered',
  },
  unrelated_messages_per_node: {
    unit: 'msg',
    better: 'lower',
    about:
      "pub/sub messages a node's Redis subscriber received on any channel but that of a room it hosts, over the delivery, averaged over the nodes",
  },
  p50_ms: { unit: 'ms', better: 'lower', about: 'median of send → receipt latency of the (fast) clients' },
  p99_ms: { unit: 'ms', better: 'lower', about: '99th percentile of send → receipt latency of the (fast) clients' },
  delivered_fraction: {
    unit: 'ratio',
    better: 'higher',
    about: 'in-order, exactly-once deliveries / expected deliveries (slow clients exempt); below 1 fails the row',
  },
  peak_rss_delta_bytes: {
    unit: 'B',
    better: 'lower',
    about: 'highest server RSS sampled every ms during the broadcast − RSS just before it',
  },
  rss_bytes_per_conn: {
    unit: 'B',
    better: 'lower',
    about:
      '(server RSS with the connections open − RSS before), both after gc(), / connections; idle-heartbeat: at the end of the heartbeat window; fanout-deflate: after the messages, with every compression context they left',
  },
  heap_bytes_per_conn: {
    unit: 'B',
    better: 'lower',
    about: 'the same with V8 heapUsed',
  },
  cycles_per_s: {
    unit: 'cycles/s',
    better: 'higher',
    about: 'connect + join + one message + close cycles completed per second',
  },
  server_cpu_us_per_cycle: {
    unit: 'µs',
    better: 'lower',
    about: 'server CPU per churn cycle; idle-heartbeat: server CPU over the window / ping/pong cycles in it, summed over the connections',
  },
  heap_growth_ratio: {
    unit: 'ratio',
    better: 'lower',
    about: 'server heapUsed after the churn / before it, both after gc() with no connection open',
  },
  resumes_per_s: {
    unit: 'resumes/s',
    better: 'higher',
    about: 'clients back (reconnected and resumed) / wall seconds from the drop until the last of them is back',
  },
  server_cpu_us_per_resume: {
    unit: 'µs',
    better: 'lower',
    about: 'server process user+system CPU from the drop until the last client is back / clients back',
  },
  lost_messages: {
    unit: 'msg',
    better: 'lower',
    about: 'messages of its room a client never received, summed over all clients',
  },
  duplicated_messages: {
    unit: 'msg',
    better: 'lower',
    about: 'messages a client received more than once (every extra copy), summed over all clients',
  },
  recovery_p99_ms: {
    unit: 'ms',
    better: 'lower',
    about:
      "99th percentile, over the clients of the node that went away, of the time from its end to the client's first live message (one sent after the client was back)",
  },
  redis_cpu_us_per_message: {
    unit: 'µs',
    better: 'lower',
    about:
      "Redis's time executing commands over the delivery (INFO commandstats, every command's usec: scripts, publishes, reads; no idle time, no socket I/O) / messages published",
  },
  recovered_fraction: {
    unit: 'ratio',
    better: 'higher',
    about: "clients whose session was recovered (berth: `resumed`'s recovered; Socket.IO: socket.recovered) / clients",
  },
} as const;

export type MetricName = keyof typeof METRICS;

export interface ResultRow {
  readonly scenario: string;
  readonly system: string;
  readonly metric: MetricName;
  readonly value: number;
  readonly unit: string;
}
