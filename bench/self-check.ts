/**
 * Checks the benchmark's own client against the real servers, in one
 * process and in a few seconds: that it completes the handshake of each
 * system, answers berth's WebSocket pings and Socket.IO's Engine.IO pings
 * (both made to come every few hundred ms), reads large and fragmented
 * messages, and that the receiver really reports duplicated, skipped and
 * reordered messages; and that resume-storm's real clients (berth/client,
 * socket.io-client) drop, come back recovered and are counted right. Not
 * part of `npm test`.
 *
 *   npx tsx bench/self-check.ts
 */
import http from 'node:http';
import { Server } from 'socket.io';
import { WebSocketServer } from 'ws';
import { createRuntime } from '../src/index.js';
import { plainDialect } from './clients/dialect.js';
import { Receiver } from './clients/receiver.js';
import { ResumeClients, type ResumeSystem } from './clients/resume.js';
import { socketIoDialect } from './clients/socketio-dialect.js';
import { INFLATE_EVERY } from './clients/receiver.js';
import { chatPayloadMaker, payloadMaker } from './payload.js';
import { HOST, wallNow } from './protocol.js';

const small = payloadMaker(100);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
let failed = 0;
function check(what: string, ok: boolean, detail: unknown = ''): void {
  if (!ok) failed++;
  console.log(`${ok ? '✓' : '✗'} ${what}${ok ? '' : ` — got ${JSON.stringify(detail)}`}`);
}

async function plainWs(): Promise<void> {
  const wss = new WebSocketServer({ port: 0, host: HOST, perMessageDeflate: false });
  await new Promise((resolve) => wss.once('listening', resolve));
  const receiver = new Receiver((wss.address() as { port: number }).port, plainDialect, [{ room: 'a', fast: 3, slow: 0 }]);
  const connected = await receiver.connect(10);
  check('ws: 3 connections open', connected.opened === 3 && wss.clients.size === 3, connected);
  const [clean, duplicating, reordering] = [...wss.clients];

  receiver.expect({ a: 5 });
  for (const seq of [0, 1, 2, 3, 4]) clean!.send(small(seq, wallNow()));
  for (const seq of [0, 1, 1, 2, 3, 4]) duplicating!.send(small(seq, wallNow()));
  for (const seq of [0, 2, 1, 3, 4]) reordering!.send(small(seq, wallNow()));
  const faults = await receiver.wait(2000);
  check(
    'ws: a duplicate and a reordering are reported, only in-order first deliveries count',
    faults.delivered === 13 && faults.expected === 15 && faults.duplicates === 2 && faults.gaps === 1,
    faults,
  );

  receiver.expect({ a: 2 });
  const big = payloadMaker(3 * 1024 * 1024)(0, wallNow());
  const fragmented = small(1, wallNow());
  for (const ws of wss.clients) {
    ws.send(big);
    ws.send(fragmented.slice(0, 50), { fin: false });
    ws.send(fragmented.slice(50), { fin: true });
  }
  const large = await receiver.wait(5000);
  check('ws: a 3 MiB message and a fragmented one arrive', large.delivered === 6 && large.malformed === 0, large);

  let pongs = 0;
  for (const ws of wss.clients) ws.once('pong', (data) => void (data.toString() === 'hi' && pongs++)).ping('hi');
  await sleep(300);
  check('ws: pings are answered with their payload', pongs === 3, pongs);

  clean!.close(1001, 'bye');
  await sleep(300);
  check('ws: a server close is seen as a closed connection', receiver.report().closedEarly === 1, receiver.report().closedEarly);
  receiver.destroyAll();
  wss.close();
}

async function socketIo(): Promise<void> {
  const httpServer = http.createServer();
  const io = new Server(httpServer, { transports: ['websocket'], perMessageDeflate: false, pingInterval: 300, pingTimeout: 200 });
  io.on('connection', (socket) => void socket.join(String(socket.handshake.query['room'])));
  await new Promise<void>((resolve) => httpServer.listen(0, HOST, () => resolve()));
  const receiver = new Receiver((httpServer.address() as { port: number }).port, socketIoDialect, [{ room: 'b', fast: 5, slow: 1 }]);
  const connected = await receiver.connect(10);
  check('Socket.IO: 6 connections complete the Engine.IO and namespace handshakes', connected.opened === 6, connected);
  await sleep(1500);
  check(
    'Socket.IO: over 5 ping intervals the 5 reading clients stay (the paused one is dropped)',
    io.engine.clientsCount === 5 && io.sockets.adapter.rooms.get('b')?.size === 5,
    { clients: io.engine.clientsCount, members: io.sockets.adapter.rooms.get('b')?.size },
  );
  receiver.expect({ b: 3 });
  for (let seq = 0; seq < 3; seq++) io.to('b').emit('m', small(seq, wallNow()));
  const report = await receiver.wait(2000);
  check('Socket.IO: events are decoded and counted', report.delivered === 15 && report.malformed === 0, report);
  receiver.destroyAll();
  await io.close();
}

async function berth(): Promise<void> {
  const runtime = createRuntime({ port: 0, host: HOST, heartbeat: { intervalMs: 200, timeoutMs: 150 } });
  runtime.on('connection', (connection) => void connection.join('c'));
  await runtime.ready;
  const receiver = new Receiver(runtime.address()!.port, plainDialect, [{ room: 'c', fast: 5, slow: 0 }]);
  const connected = await receiver.connect(10);
  check('berth: 5 connections open', connected.opened === 5, connected);
  await sleep(1000);
  check('berth: over 5 heartbeats every connection stays', runtime.health().connections.current === 5, runtime.health().connections);
  receiver.expect({ c: 2 });
  runtime.sendToRoom('c', small(0, wallNow()));
  runtime.sendToRoom('c', small(1, wallNow()));
  const report = await receiver.wait(2000);
  check('berth: room broadcasts are counted', report.delivered === 10, report);
  receiver.destroyAll();
  await runtime.close({ timeoutMs: 200 });
}

/**
 * fanout-deflate's clients against the three servers with compression: each offers
 * permessage-deflate, and 1 KiB chat messages arrive compressed. Against berth (no context
 * takeover) the sampled connection inflates and checks them whole, the others count them; against
 * ws and Socket.IO (context takeover) every connection inflates everything, Socket.IO's pings
 * (compressed too, every 300 ms here; a 2 s timeout, as a ping waits behind the messages
 * ws compresses before it) included.
 */
async function deflate(): Promise<void> {
  const chat = chatPayloadMaker(1024);
  const count = INFLATE_EVERY + 2; // the sampled slot 0 and INFLATE_EVERY, and the rest
  const servers: { label: string; port: number; send: (seq: number) => void; stop: () => Promise<unknown> }[] = [];
  const runtime = createRuntime({ port: 0, host: HOST, compression: true });
  runtime.on('connection', (connection) => void connection.join('d'));
  await runtime.ready;
  servers.push({
    label: 'berth',
    port: runtime.address()!.port,
    send: (seq) => runtime.sendToRoom('d', chat.make(seq, wallNow())),
    stop: () => runtime.close({ timeoutMs: 200 }),
  });
  const wss = new WebSocketServer({ port: 0, host: HOST, perMessageDeflate: true });
  wss.on('connection', (ws) => ws.on('error', () => {}));
  await new Promise((resolve) => wss.once('listening', resolve));
  servers.push({
    label: 'ws',
    port: (wss.address() as { port: number }).port,
    send: (seq) => {
      const data = Buffer.from(chat.make(seq, wallNow()));
      for (const ws of wss.clients) ws.send(data, { binary: false });
    },
    stop: () => new Promise((resolve) => wss.close(resolve)),
  });
  const httpServer = http.createServer();
  const io = new Server(httpServer, { transports: ['websocket'], perMessageDeflate: true, pingInterval: 300, pingTimeout: 2000 });
  io.on('connection', (socket) => void socket.join(String(socket.handshake.query['room'])));
  await new Promise<void>((resolve) => httpServer.listen(0, HOST, () => resolve()));
  servers.push({
    label: 'Socket.IO',
    port: (httpServer.address() as { port: number }).port,
    send: (seq) => void io.to('d').emit('m', chat.make(seq, wallNow())),
    stop: () => io.close(),
  });
  for (const { label, port, send, stop } of servers) {
    const dialect = label === 'Socket.IO' ? socketIoDialect : plainDialect;
    const receiver = new Receiver(port, dialect, [{ room: 'd', fast: count, slow: 0 }], true);
    const connected = await receiver.connect(10);
    check(`${label} with compression: ${count} connections offer permessage-deflate and open`, connected.opened === count, connected);
    // Socket.IO: a second for its compressed pings to come and be answered.
    await sleep(label === 'Socket.IO' ? 1000 : 100);
    if (label === 'Socket.IO') {
      const pinged = receiver.report();
      check('Socket.IO with compression: its compressed pings are inflated and answered', pinged.pings > 0 && pinged.closedEarly === 0, {
        pings: pinged.pings,
        closed: pinged.firstErrors,
      });
    }
    receiver.expect({ d: 20 });
    for (let seq = 0; seq < 20; seq++) send(seq);
    const report = await receiver.wait(5000);
    const inflatesAll = label !== 'berth';
    check(
      `${label} with compression: every 1 KiB message arrives compressed, the sampled connections' checked whole, ${inflatesAll ? 'all inflated' : 'the rest counted'}`,
      report.delivered === 20 * count &&
        report.malformed === 0 &&
        report.checkedWhole === 40 &&
        report.inflated + report.counted === 20 * count &&
        report.counted === (inflatesAll ? 0 : 20 * (count - 2)) &&
        report.wireBytes < 20 * count * 1024,
      { ...report, latency: undefined },
    );
    receiver.destroyAll();
    await stop();
  }
}

/**
 * The real clients of resume-storm (clients/resume.ts) against each real server: they open, get a
 * first few messages, lose every TCP socket at once, miss five messages, come back recovered, and
 * the checker counts a message sent twice and one never sent as one duplicate and one loss per client.
 * The missed messages are sent in the same turn as the drop, before any client can be back, so
 * nothing races the resume here (resume-storm itself lets the rooms go on during the storm).
 */
async function resumeClients(system: ResumeSystem): Promise<void> {
  const label = system === 'berth' ? 'berth/client' : 'socket.io-client';
  let send: (seq: number) => void;
  let stop: () => Promise<unknown>;
  let port: number;
  if (system === 'berth') {
    const runtime = createRuntime({ port: 0, host: HOST, recovery: { windowMs: 120_000, maxSessions: 100 } });
    runtime.on('connection', (connection) => void connection.join('e'));
    await runtime.ready;
    port = runtime.address()!.port;
    send = (seq) => runtime.sendToRoom('e', small(seq, wallNow()));
    stop = () => runtime.close({ timeoutMs: 200 });
  } else {
    const httpServer = http.createServer();
    const io = new Server(httpServer, {
      transports: ['websocket'],
      perMessageDeflate: false,
      connectionStateRecovery: { maxDisconnectionDuration: 120_000 },
    });
    io.on('connection', (socket) => void socket.join(String(socket.handshake.query['room'])));
    await new Promise<void>((resolve) => httpServer.listen(0, HOST, () => resolve()));
    port = (httpServer.address() as { port: number }).port;
    send = (seq) => void io.to('e').emit('m', small(seq, wallNow()));
    stop = () => io.close();
  }
  const clients = new ResumeClients(system, port, [{ room: 'e', count: 5 }], 16);
  const opened = await clients.open(5);
  check(`${label}: 5 real clients open`, opened.opened === 5, opened);
  await sleep(200);
  for (let seq = 0; seq < 5; seq++) send(seq);
  const before = await clients.waitReceived(5, 2000);
  check(`${label}: every client has the first 5 messages`, before.haveAll === 5 && before.duplicated === 0, before);
  clients.drop();
  for (let seq = 5; seq < 10; seq++) send(seq);
  const back = await clients.waitBack(5000);
  check(
    `${label}: after every TCP socket is destroyed, all 5 reconnect by themselves and are recovered`,
    back.back === 5 && back.recovered === 5 && back.lastBackAt > back.droppedAt,
    back,
  );
  for (const seq of [10, 11, 12, 13, 13, 15]) send(seq);
  const after = await clients.waitReceived(16, 2000);
  check(
    `${label}: the 5 missed messages are replayed; a message sent twice and one never sent count as duplicated and lost`,
    after.missing === 5 && after.duplicated === 5 && after.reordered === 0 && after.malformed === 0 && after.reached === 5,
    after,
  );
  clients.closeAll();
  await stop();
}

await plainWs();
await socketIo();
await berth();
await deflate();
await resumeClients('berth');
await resumeClients('socketio');
console.log(failed === 0 ? 'self-check passed' : `self-check: ${failed} check(s) failed`);
process.exit(failed === 0 ? 0 : 1);
