/**
 * Runs scenarios against an application's runtime: named `ws` clients over
 * real loopback TCP (`ws`) or over in-memory sockets (`memory`, the same ws
 * and HTTP code without the kernel), XState's `SimulatedClock` for every
 * actor delay, and a timeline of what each client did and saw. Steps marked
 * `concurrent` are tried in every order (or a sample of them), and a failing
 * order is reported with what replays it.
 */
import http from 'node:http';
import { isDeepStrictEqual } from 'node:util';
import WebSocket from 'ws';
import { SimulatedClock } from 'xstate';
import type { Runtime } from '../index.js';
import { memorySocketPair } from './memory-socket.js';
import { kindOf, parseScenario, type MessageSpec, type Scenario, type ServerAssertion, type Step, type TransportName } from './scenario.js';
import { concurrentGroups, formatOrder, ordersToTry, parseOrder, type Order } from './orders.js';
import { Timeline } from './timeline.js';

/** What the runner passes to your factory, with the scenario's `options` spread in. */
export interface AppOptions extends Record<string, unknown> {
  /** Pass it to `createRuntime`: `advance` steps move it. */
  readonly clock: SimulatedClock;
  /** Set for the `ws` transport: listen here. */
  readonly port?: number;
  readonly host?: string;
  /** Set for the `memory` transport: attach to this server (it never listens). */
  readonly server?: http.Server;
}

/** Creates your application's runtime with these options (call `createRuntime({ ...options, …yours })`). */
export type AppFactory = (options: AppOptions) => Runtime | Promise<Runtime>;

export interface RunOptions {
  readonly app: AppFactory;
  /** [default 'memory'] */
  readonly transport?: TransportName;
  /** Most orders of the concurrent steps to try; past it, a seeded sample. [default 24] */
  readonly maxOrders?: number;
  /** Replays one order, as a failure reported it (`0:1,0`). */
  readonly order?: string;
  /** Seed of the sample when there are more orders than `maxOrders`. [default 1] */
  readonly seed?: number;
}

export interface ScenarioResult {
  readonly name: string;
  readonly transport: TransportName;
  readonly passed: boolean;
  /** How many orders of the concurrent steps ran. */
  readonly orders: number;
  /** The order of the failing run (`group:permutation;…`; `-` without concurrent steps), to pass back as `order`. */
  readonly order?: string;
  /** The step that failed (its path in the scenario) and why. */
  readonly failure?: string;
  /** The timeline of the failing run, or of the last run. */
  readonly timeline: Timeline;
}

const DEFAULT_TIMEOUT_MS = 2000;
const CLIENT_HEADER = 'x-berth-scenario-client';
const USER_HEADER = 'x-scenario-user';

/** Runs a scenario; rejects with a `TypeError` naming the step (its path and keys) if a step is not one the runner knows. */
export async function runScenario(scenario: Scenario, options: RunOptions): Promise<ScenarioResult> {
  // Checked whole before anything runs: a step the runner does not know must never be skipped.
  parseScenario(scenario, 'scenario');
  const transport = options.transport ?? 'memory';
  const groups = concurrentGroups(scenario.steps);
  const orders =
    options.order !== undefined ? [parseOrder(options.order, groups)] : ordersToTry(groups, options.maxOrders ?? 24, options.seed ?? 1);
  let last: Timeline = new Timeline();
  for (const [index, order] of orders.entries()) {
    const run = new Run(scenario, options.app, transport, groups, order);
    const failure = await run.execute();
    last = run.timeline;
    if (failure !== undefined) {
      return {
        name: scenario.name,
        transport,
        passed: false,
        orders: index + 1,
        order: formatOrder(order),
        failure,
        timeline: run.timeline,
      };
    }
  }
  return { name: scenario.name, transport, passed: true, orders: orders.length, timeline: last };
}

/** A result as a few lines; on failure with the timeline and how to replay the order. */
export function formatResult(result: ScenarioResult): string {
  const head = `${result.passed ? 'PASS' : 'FAIL'} ${result.name} [${result.transport}] (${result.orders} order${result.orders === 1 ? '' : 's'})`;
  if (result.passed) return head;
  return `${head}\n  ${result.failure}\n  order ${result.order} (replay: --order ${result.order})\n  timeline:\n${result.timeline.format()}`;
}

// ---- One run -----------------------------------------------------------------

interface Received {
  readonly text: string | undefined;
  readonly bytes: Buffer;
  readonly binary: boolean;
}

interface Client {
  readonly name: string;
  readonly tag: string;
  readonly ws: WebSocket;
  readonly received: Received[];
  taken: number;
  closed: { code: number; reason: string } | undefined;
  wake: Array<() => void>;
}

class StepFailure extends Error {}

class Run {
  readonly timeline = new Timeline();
  readonly #scenario: Scenario;
  readonly #app: AppFactory;
  readonly #transport: TransportName;
  readonly #groups: Map<Step, number>;
  readonly #order: Order;
  readonly #clock = new SimulatedClock();
  readonly #clients = new Map<string, Client>();
  /** Connection id → client tag (`name#n`), from the header every client sends. */
  readonly #tags = new Map<string, string>();
  readonly #closes = new Map<string, Array<{ code: number; reason: string; cause: string }>>();
  readonly #drops = new Map<string, number>();
  #runtime: Runtime | undefined;
  #server: http.Server | undefined;
  #port = 0;
  #generation = 0;

  constructor(scenario: Scenario, app: AppFactory, transport: TransportName, groups: Map<Step, number>, order: Order) {
    this.#scenario = scenario;
    this.#app = app;
    this.#transport = transport;
    this.#groups = groups;
    this.#order = order;
  }

  /** Runs every step; resolves with why it failed, or undefined. */
  async execute(): Promise<string | undefined> {
    try {
      await this.#start();
      await this.#steps(this.#scenario.steps, 'steps');
      return undefined;
    } catch (error) {
      return error instanceof StepFailure ? error.message : `${error instanceof Error ? (error.stack ?? error.message) : String(error)}`;
    } finally {
      for (const client of this.#clients.values()) client.ws.terminate();
      await this.#runtime?.close({ timeoutMs: 500 });
      this.#server?.close();
    }
  }

  async #start(): Promise<void> {
    const options = { ...this.#scenario.options, clock: this.#clock };
    if (this.#transport === 'ws') {
      this.#runtime = await this.#app({ ...options, port: 0, host: '127.0.0.1' });
    } else {
      this.#server = http.createServer();
      this.#runtime = await this.#app({ ...options, server: this.#server });
    }
    await this.#runtime.ready;
    this.#port = this.#runtime.address()?.port ?? 0;
    const runtime = this.#runtime;
    runtime.on('connection', (connection) => {
      const tag = connection.request.headers[CLIENT_HEADER];
      if (typeof tag !== 'string') return;
      this.#tags.set(connection.id, tag);
      this.timeline.add(tag.split('#')[0]!, 'server', `registered as ${connection.id}`);
    });
    runtime.on('close', ({ connection, code, reason, cause }) => {
      const tag = this.#tags.get(connection.id);
      if (tag === undefined) return;
      this.#closes.set(tag, [...(this.#closes.get(tag) ?? []), { code, reason, cause }]);
      this.timeline.add(tag.split('#')[0]!, 'server', `closed ${code}${reason ? ` "${reason}"` : ''} (${cause})`);
    });
    runtime.on('drop', ({ connection, count }) => {
      const tag = this.#tags.get(connection.id);
      if (tag !== undefined) this.#drops.set(tag, (this.#drops.get(tag) ?? 0) + count);
    });
  }

  async #steps(steps: readonly Step[], where: string): Promise<void> {
    for (const [index, step] of steps.entries()) await this.#step(step, `${where}[${index}]`);
  }

  async #step(step: Step, where: string): Promise<void> {
    const fail = (why: string): never => {
      throw new StepFailure(`${where} (${kindOf(step)}${'connect' in step ? ` ${step.connect}` : ''}): ${why}`);
    };
    if ('concurrent' in step) {
      const order = this.#order[this.#groups.get(step)!] ?? step.concurrent.map((_, i) => i);
      // Each step's synchronous part (a send, a close, a drop) happens in this order.
      await Promise.all(order.map((i) => this.#step(step.concurrent[i]!, `${where}.concurrent[${i}]`)));
      return;
    }
    if ('repeat' in step) {
      for (let round = 0; round < step.repeat; round++) await this.#steps(step.steps, `${where}(round ${round + 1})`);
      return;
    }
    if ('connect' in step) return this.#connect(step, fail);
    if ('send' in step) {
      const client = this.#client(step.send, fail);
      const data = payload(step, fail);
      client.ws.send(data);
      this.timeline.add(client.name, 'sent', describe(data));
      return;
    }
    if ('expect' in step) return this.#expect(step, fail);
    if ('expectClose' in step) {
      const client = this.#client(step.expectClose, fail, true);
      await this.#until(
        client,
        () => client.closed !== undefined,
        step.timeoutMs,
        () => fail(`no close within ${step.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms`),
      );
      const { code, reason } = client.closed!;
      if (step.code !== undefined && code !== step.code) fail(`closed with ${code}, expected ${step.code}`);
      if (step.reason !== undefined && reason !== step.reason) fail(`closed with reason "${reason}", expected "${step.reason}"`);
      return;
    }
    if ('pause' in step) {
      this.#client(step.pause, fail).ws.pause();
      this.timeline.add(step.pause, 'paused');
      return;
    }
    if ('resume' in step) {
      this.#client(step.resume, fail).ws.resume();
      this.timeline.add(step.resume, 'resumed');
      return;
    }
    if ('close' in step) {
      this.#client(step.close, fail).ws.close(step.code, step.reason);
      this.timeline.add(step.close, 'sent', `close ${step.code ?? ''} ${step.reason ?? ''}`.trim());
      return;
    }
    if ('drop' in step) {
      const socket = (this.#client(step.drop, fail).ws as unknown as { _socket?: { destroy(): void } })._socket;
      if (socket === undefined) fail('the client has no socket (not connected)');
      socket!.destroy();
      this.timeline.add(step.drop, 'dropped', 'TCP connection dropped, no close frame');
      return;
    }
    if ('advance' in step) {
      this.#clock.increment(step.advance);
      this.timeline.add('server', 'advanced', `${step.advance} ms of simulated time`);
      await settle();
      return;
    }
    if ('broadcast' in step) {
      const { room, user, all, count = 1 } = step.broadcast;
      const runtime = this.#runtime!;
      for (let i = 0; i < count; i++) {
        const data = payload(
          step.broadcast.text !== undefined && count > 1 ? { ...step.broadcast, text: `${step.broadcast.text}#${i}` } : step.broadcast,
          fail,
        );
        if (room !== undefined) runtime.sendToRoom(room, data);
        else if (user !== undefined) runtime.sendToUser(user, data);
        else if (all === true) runtime.sendToAll(data);
        else fail('broadcast needs room, user or all');
      }
      this.timeline.add(
        'server',
        'broadcast',
        `${count} × ${room !== undefined ? `room ${room}` : user !== undefined ? `user ${user}` : 'all'}`,
      );
      return;
    }
    if ('assert' in step) return this.#assert(step.assert, step.timeoutMs ?? DEFAULT_TIMEOUT_MS, fail);
  }

  async #connect(step: Extract<Step, { connect: string }>, fail: (why: string) => never): Promise<void> {
    const name = step.connect;
    const tag = `${name}#${++this.#generation}`;
    const headers: Record<string, string> = { ...step.headers, [CLIENT_HEADER]: tag };
    if (step.user !== undefined) headers[USER_HEADER] = step.user;
    const path = step.path ?? '/';
    const clientOptions: WebSocket.ClientOptions = { headers, ...(step.origin !== undefined && { origin: step.origin }) };
    let ws: WebSocket;
    if (this.#transport === 'ws') {
      ws = new WebSocket(`ws://127.0.0.1:${this.#port}${path}`, clientOptions);
    } else {
      const [clientEnd, serverEnd] = memorySocketPair();
      this.#server!.emit('connection', serverEnd);
      ws = new WebSocket(`ws://scenario.invalid${path}`, { ...clientOptions, createConnection: () => clientEnd as never });
    }
    const client: Client = { name, tag, ws, received: [], taken: 0, closed: undefined, wake: [] };
    const wake = () => {
      for (const resolve of client.wake.splice(0)) resolve();
    };
    ws.on('message', (data: Buffer, binary) => {
      const text = binary ? undefined : data.toString('utf8');
      client.received.push({ text, bytes: data, binary });
      this.timeline.add(name, 'received', text ?? `${data.length} bytes`);
      wake();
    });
    ws.on('close', (code, reason) => {
      client.closed = { code, reason: reason.toString() };
      this.timeline.add(name, 'closed', `${code}${reason.length > 0 ? ` "${reason.toString()}"` : ''}`);
      wake();
    });
    ws.on('error', () => {}); // what matters arrives as close or refusal
    this.timeline.add(name, 'connect', path);
    const outcome = await new Promise<{ status: number } | 'open'>((resolve) => {
      ws.once('open', () => resolve('open'));
      ws.once('unexpected-response', (_request, response) => {
        resolve({ status: response.statusCode ?? 0 });
        response.resume();
      });
      ws.once('close', () => resolve({ status: 0 }));
    });
    if (outcome !== 'open') {
      this.timeline.add(name, 'refused', `HTTP ${outcome.status}`);
      if (step.expectRefused === undefined) fail(`the upgrade was refused with HTTP ${outcome.status}`);
      if (outcome.status !== step.expectRefused) fail(`refused with HTTP ${outcome.status}, expected ${step.expectRefused}`);
      return;
    }
    if (step.expectRefused !== undefined) fail(`connected, expected a refusal with HTTP ${step.expectRefused}`);
    this.#clients.set(name, client);
  }

  async #expect(step: Extract<Step, { expect: string }>, fail: (why: string) => never): Promise<void> {
    const client = this.#client(step.expect, fail, true);
    const timeoutMs = step.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    await this.#until(
      client,
      () => client.received.length > client.taken || client.closed !== undefined,
      timeoutMs,
      () => fail(`no message within ${timeoutMs} ms`),
    );
    if (client.received.length <= client.taken) fail(`the connection closed (${client.closed!.code}) before a message arrived`);
    const message = client.received[client.taken++]!;
    const shown = message.text ?? `${message.bytes.length} bytes`;
    if (step.text !== undefined && message.text !== step.text) fail(`got ${JSON.stringify(shown)}, expected ${JSON.stringify(step.text)}`);
    if (step.pattern !== undefined && (message.text === undefined || !new RegExp(step.pattern).test(message.text))) {
      fail(`got ${JSON.stringify(shown)}, expected a match of /${step.pattern}/`);
    }
    if (step.length !== undefined && message.bytes.length !== step.length)
      fail(`got ${message.bytes.length} bytes, expected ${step.length}`);
    if (step.bytes !== undefined && (!message.binary || message.bytes.length !== step.bytes))
      fail(`got ${shown}, expected ${step.bytes} binary bytes`);
    if (step.json !== undefined) {
      let value: unknown;
      try {
        value = JSON.parse(message.text ?? '');
      } catch {
        fail(`got ${JSON.stringify(shown)}, expected JSON containing ${JSON.stringify(step.json)}`);
      }
      if (!contains(value, step.json)) fail(`got ${shown}, expected JSON containing ${JSON.stringify(step.json)}`);
    }
  }

  async #assert(assertion: ServerAssertion, timeoutMs: number, fail: (why: string) => never): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const problem = this.#check(assertion);
      if (problem === undefined) return;
      if (performance.now() > deadline) fail(`after ${timeoutMs} ms: ${problem}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  /** What does not hold yet, or undefined. */
  #check(assertion: ServerAssertion): string | undefined {
    const runtime = this.#runtime!;
    const view = runtime.snapshot();
    const names = (ids: readonly string[]) => ids.map((id) => this.#tags.get(id)?.split('#')[0] ?? id).sort();
    for (const [room, expected] of Object.entries(assertion.rooms ?? {})) {
      const actual = names(view.rooms[room] ?? []);
      if (!isDeepStrictEqual(actual, [...expected].sort()))
        return `room ${room} holds [${actual.join(', ')}], expected [${[...expected].sort().join(', ')}]`;
    }
    for (const [user, expected] of Object.entries(assertion.users ?? {})) {
      const actual = names(view.users[user] ?? []);
      if (!isDeepStrictEqual(actual, [...expected].sort()))
        return `user ${user} has [${actual.join(', ')}], expected [${[...expected].sort().join(', ')}]`;
    }
    const tagOf = (name: string) =>
      this.#clients.get(name)?.tag ?? [...this.#tags.values()].reverse().find((tag) => tag.startsWith(`${name}#`));
    for (const [name, expected] of Object.entries(assertion.states ?? {})) {
      const tag = tagOf(name);
      const id = [...this.#tags].find(([, t]) => t === tag)?.[0];
      const state = id === undefined ? 'unknown' : (runtime.connection(id)?.state ?? 'closed');
      if (state !== expected) return `${name} is ${state}, expected ${expected}`;
    }
    for (const [name, expected] of Object.entries(assertion.closed ?? {})) {
      const close = this.#closes.get(tagOf(name) ?? '')?.[0];
      if (close === undefined) return `${name} has not closed`;
      for (const key of ['code', 'reason', 'cause'] as const) {
        if (expected[key] !== undefined && close[key] !== expected[key])
          return `${name} closed with ${key} ${JSON.stringify(close[key])}, expected ${JSON.stringify(expected[key])}`;
      }
    }
    for (const [name, expected] of Object.entries(assertion.closeEvents ?? {})) {
      const count = this.#closes.get(tagOf(name) ?? '')?.length ?? 0;
      if (count !== expected) return `${name} had ${count} close events, expected ${expected}`;
    }
    for (const [name, expected] of Object.entries(assertion.minDropped ?? {})) {
      const count = this.#drops.get(tagOf(name) ?? '') ?? 0;
      if (count < expected) return `${count} messages were dropped for ${name}, expected at least ${expected}`;
    }
    if (assertion.connections !== undefined) {
      const count = Object.keys(view.connections).length;
      if (count !== assertion.connections) return `the server holds ${count} connections, expected ${assertion.connections}`;
    }
    return undefined;
  }

  #client(name: string, fail: (why: string) => never, closedToo = false): Client {
    const client = this.#clients.get(name);
    if (client === undefined) fail(`no client named ${name} is connected`);
    if (!closedToo && client!.closed !== undefined) fail(`${name} is closed`);
    return client!;
  }

  async #until(client: Client, done: () => boolean, timeoutMs = DEFAULT_TIMEOUT_MS, onTimeout: () => never): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!done()) {
      const left = deadline - performance.now();
      if (left <= 0) onTimeout();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        client.wake.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}

function payload(spec: MessageSpec, fail: (why: string) => never): string | Buffer {
  if (spec.text !== undefined) return spec.text;
  if (spec.json !== undefined) return JSON.stringify(spec.json);
  if (spec.bytes !== undefined) return Buffer.alloc(spec.bytes, 0x62);
  return fail('a message needs text, json or bytes');
}

const describe = (data: string | Buffer) => (typeof data === 'string' ? data : `${data.length} bytes`);

/** True if `actual` has every field of `expected`, recursively (arrays must match element by element). */
function contains(actual: unknown, expected: unknown): boolean {
  if (typeof expected !== 'object' || expected === null) return isDeepStrictEqual(actual, expected);
  if (typeof actual !== 'object' || actual === null) return false;
  if (Array.isArray(expected))
    return Array.isArray(actual) && actual.length === expected.length && expected.every((item, i) => contains(actual[i], item));
  return Object.entries(expected).every(([key, value]) => contains((actual as Record<string, unknown>)[key], value));
}

/** Lets sockets and actors act on what just happened. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}
