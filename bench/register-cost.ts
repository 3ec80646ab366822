/**
 * Per-connect registration cost when 100 and when 10 000 connections are
 * already registered: the runtime's way (a connection actor created with the
 * supervisor as parent, then a `connection.register` message) against
 * XState's `spawnChild` under one parent. Also the cost of a connection
 * closing at those sizes, with and without berth's scheduler index.
 *
 *   npx tsc -p tsconfig.bench.json && node dist-bench/bench/register-cost.js [--no-spawn]
 *
 * Prints medians of 15 batches of 100, in microseconds per connection.
 */
import { createActor, enqueueActions, setup, type AnyActorRef } from 'xstate';
import { CONNECTION_ACTOR_ID, connectionMachine } from '../machines/connection.machine.js';
import { supervisorMachine } from '../machines/supervisor.machine.js';
import { indexScheduledEvents } from '../src/interpreter/actor-scheduler.js';

const SIZES = [100, 10_000];
const BATCH = 100;
const BATCHES = 15;
const port = { deliver() {}, left() {} };
const input = (id: string) => ({ id, heartbeat: { intervalMs: 30_000, timeoutMs: 10_000 }, closeTimeoutMs: 5000 });

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

interface Registry {
  add(id: string): AnyActorRef;
}

function berthRegistry(indexed: boolean): Registry {
  const supervisor = createActor(supervisorMachine, { input: {} });
  if (indexed) indexScheduledEvents(supervisor.system);
  supervisor.start();
  return {
    add(id) {
      const actor = createActor(connectionMachine, { parent: supervisor, id: CONNECTION_ACTOR_ID, input: input(id) });
      actor.start();
      supervisor.send({ type: 'connection.register', id, ref: actor, port });
      return actor;
    },
  };
}

function spawnRegistry(): Registry {
  const parent = createActor(
    setup({ types: {} as { events: { type: 'add'; id: string } }, actors: { connection: connectionMachine } }).createMachine({
      on: {
        add: {
          actions: enqueueActions(({ event, enqueue }) => enqueue.spawnChild('connection', { id: event.id, input: input(event.id) })),
        },
      },
    }),
  ).start();
  return {
    add(id) {
      parent.send({ type: 'add', id });
      return (parent.getSnapshot().children as Record<string, AnyActorRef>)[id]!;
    },
  };
}

function measure(name: string, registry: Registry, closeToo: boolean): void {
  let n = 0;
  const actors: AnyActorRef[] = [];
  const row: string[] = [name];
  for (const size of SIZES) {
    while (n < size) actors.push(registry.add(`c${n++}`));
    const connects: number[] = [];
    const closes: number[] = [];
    for (let b = 0; b < BATCHES; b++) {
      const start = performance.now();
      const batch: AnyActorRef[] = [];
      for (let i = 0; i < BATCH; i++) batch.push(registry.add(`c${n++}`));
      connects.push(((performance.now() - start) * 1000) / BATCH);
      if (closeToo) {
        // Close the batch again so the size stays put; this is the path a disconnect takes.
        const closeStart = performance.now();
        for (const actor of batch) actor.send({ type: 'socket.closed', code: 1000, reason: '' });
        closes.push(((performance.now() - closeStart) * 1000) / BATCH);
      } else {
        actors.push(...batch);
      }
    }
    row.push(`at ${size}: connect ${median(connects).toFixed(1)} µs${closeToo ? `, close ${median(closes).toFixed(1)} µs` : ''}`);
  }
  console.log(row.join(' | '));
}

// Warm the JIT on a throwaway registry so the first size is not charged for it.
measure('warm-up (ignore)', berthRegistry(true), true);
measure('berth (parent + register, indexed scheduler)', berthRegistry(true), true);
measure('berth without scheduler index', berthRegistry(false), true);
if (!process.argv.includes('--no-spawn')) measure('spawnChild under one parent', spawnRegistry(), false);
