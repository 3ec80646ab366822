/**
 * Runs scenarios against an application's runtime: named clients — raw `ws`
 * clients, and `berth/client` clients that speak `berth.v1`, reconnect and
 * resume — over real loopback TCP (`ws`) or over in-memory sockets
 * (`memory`, the same ws and HTTP code without the kernel), XState's
 * `SimulatedClock` for every actor delay, and a timeline of what each client
 * did and saw. Steps marked `concurrent` are tried in every order (or a
 * sample of them), and a failing order is reported with what replays it.
 */
import http from 'node:http';
import WebSocket from 'ws';
import { SimulatedClock } from 'xstate';
import { createMemoryAdapter, createMemoryBus } from '../cluster/memory-adapter.js';
import type { Adapter, Runtime } from '../index.js';
import { ClientSteps } from './client-steps.js';
import { describe, mismatch, payload } from './matching.js';
import { memorySocketPair } from './memory-socket.js';
import { concurrentGroups, formatOrder, ordersToTry, parseOrder, type Order } from './orders.js';
import { RawClient } from './raw-client.js';
import {
  DEFAULT_TIMEOUT_MS,
  StepFailure,
  USER_HEADER,
  expectClosed,
  settle,
  type Fail,
  type Land,
  type RunContext,
} from './run-context.js';
import { kindOf, parseScenario, type Scenario, type Step, type TransportName } from './scenario.js';
import { CLIENT_HEADER, ServerRecord } from './server-record.js';
import { Timeline } from './timeline.js';
import { Signal } from './wait.js';

/** What the runner passes to your factory, with the scenario's `options` spread in. */
export interface AppOptions extends Record<string, unknown> {
  /** Pass it to `createRuntime`: `advance` steps move it. */
  readonly clock: SimulatedClock;
  /** Set for the `ws` transport: listen here. */
  readonly port?: number;
  readonly host?: string;
  /** Set for the `memory` transport: attach to this server (it never listens). */
  readonly server?: http.Server;
  /** With `runtimes` > 1: a memory adapter on the bus the scenario's runtimes share. An app may bring its own cluster adapter instead. */
  readonly adapter?: Adapter;
  /**
   * With `runtimes` > 1: which of them this call makes (`index`, of `count`), and `run`, unique to this run of the
   * scenario (each order of its concurrent steps is a run): what an app bringing its own cluster adapter names its
   * cluster by (a Redis prefix), so that runs do not share one.
   */
  readonly scenarioNode?: { readonly index: number; readonly count: number; readonly run: string };
}

/** Creates your application's runtime with these options (call `createRuntime({ ...options, …yours })`). */
export type AppFactory = (options: AppOptions) => Runtime | Promise<Runtime>;

/** How `runScenario` runs a scenario: against which application, on which transport, in which orders. */
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

/** What `runScenario` resolves with; `formatResult` prints it. */
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

/** Runs so far in this process: each names its runtimes' cluster (`scenarioNode.run`). */
let runs = 0;

/** Steps that take effect at once on the server's side, rather than travelling over a connection to it. */
const actsAtOnce = (step: Step) => 'advance' in step || 'broadcast' in step || 'assert' in step;

class Run {
  readonly timeline = new Timeline();
  readonly #scenario: Scenario;
  readonly #app: AppFactory;
  readonly #transport: TransportName;
  readonly #groups: Map<Step, number>;
  readonly #order: Order;
  readonly #clock = new SimulatedClock();
  /** Woken by everything the run records. */
  readonly #changed = new Signal();
  readonly #raw = new Map<string, RawClient>();
  readonly #clients: ClientSteps;
  readonly #run: RunContext;
  #record: ServerRecord | undefined;
  /** The scenario's runtimes, by index; steps act on the first unless they name another. */
  readonly #runtimes: Runtime[] = [];
  readonly #servers: http.Server[] = [];
  readonly #ports: number[] = [];
  #generation = 0;

  constructor(scenario: Scenario, app: AppFactory, transport: TransportName, groups: Map<Step, number>, order: Order) {
    this.#scenario = scenario;
    this.#app = app;
    this.#transport = transport;
    this.#groups = groups;
    this.#order = order;
    this.#run = this.#context();
    this.#clients = new ClientSteps(
      this.#run,
      (path, protocols, options, runtime) => this.#dial(path, protocols, options, runtime),
      (path, runtime) => (transport === 'ws' ? `ws://127.0.0.1:${this.#ports[runtime]}${path}` : `ws://scenario.invalid${path}`),
    );
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
      for (const client of this.#raw.values()) client.ws.terminate();
      this.#clients.stop();
      await Promise.all(this.#runtimes.map((runtime) => runtime.close({ timeoutMs: 500 })));
      for (const server of this.#servers) server.close();
    }
  }

  /** What the families of steps may use of this run. */
  #context(): RunContext {
    const self = this;
    return {
      timeline: this.timeline,
      // Built before the server starts; the record exists once it has.
      get record() {
        return self.#record!;
      },
      wait: (done, timeoutMs, fail, why) => this.#wait(done, timeoutMs, fail, why),
      landing: (done, fail, what) =>
        this.#wait(done, DEFAULT_TIMEOUT_MS, fail, () => `${what} did not reach the server within ${DEFAULT_TIMEOUT_MS} ms`),
      openOnServer: (tag) => {
        const id = this.#record!.idOf(tag);
        return id !== undefined && this.#connection(id)?.state === 'open';
      },
      nextTag: (name) => `${name}#${++this.#generation}`,
      notify: () => this.#changed.notify(),
    };
  }

  async #start(): Promise<void> {
    const count = this.#scenario.runtimes ?? 1;
    const bus = createMemoryBus();
    const run = `run${++runs}`;
    for (let index = 0; index < count; index++) {
      const options = {
        ...this.#scenario.options,
        clock: this.#clock,
        ...(count > 1 && { adapter: createMemoryAdapter(bus), scenarioNode: { index, count, run } }),
      };
      let runtime: Runtime;
      if (this.#transport === 'ws') {
        runtime = await this.#app({ ...options, port: 0, host: '127.0.0.1' });
      } else {
        const server = http.createServer();
        this.#servers.push(server);
        runtime = await this.#app({ ...options, server });
      }
      this.#runtimes.push(runtime);
      await runtime.ready;
      this.#ports.push(runtime.address()?.port ?? 0);
    }
    this.#record = new ServerRecord(this.#runtimes, this.timeline, () => this.#changed.notify());
  }

  /** A live connection by id, on whichever of the runtimes holds it. */
  #connection(id: string): ReturnType<Runtime['connection']> {
    for (const runtime of this.#runtimes) {
      const connection = runtime.connection(id);
      if (connection !== undefined) return connection;
    }
    return undefined;
  }

  /** A `ws` WebSocket to runtime `runtime` of the scenario, over loopback TCP or a new in-memory socket pair. */
  #dial(path: string, protocols: readonly string[], options: WebSocket.ClientOptions, runtime = 0): WebSocket {
    if (this.#transport === 'ws') return new WebSocket(`ws://127.0.0.1:${this.#ports[runtime]}${path}`, [...protocols], options);
    const [clientEnd, serverEnd] = memorySocketPair();
    this.#servers[runtime]!.emit('connection', serverEnd);
    return new WebSocket(`ws://scenario.invalid${path}`, [...protocols], { ...options, createConnection: () => clientEnd as never });
  }

  async #wait(done: () => boolean, timeoutMs: number, fail: Fail, why: () => string): Promise<void> {
    if (!(await this.#changed.until(done, timeoutMs))) fail(why());
  }

  async #steps(steps: readonly Step[], where: string): Promise<void> {
    for (const [index, step] of steps.entries()) await this.#step(step, `${where}[${index}]`);
  }

  async #step(step: Step, where: string, land: Land = () => {}): Promise<void> {
    const fail: Fail = (why) => {
      throw new StepFailure(`${where} (${kindOf(step)}${'connect' in step ? ` ${step.connect}` : ''}): ${why}`);
    };
    const clients = this.#clients;
    /** Whether the step's client is a berth/client client. */
    const berth = (name: string) => clients.has(name);
    if ('concurrent' in step) return this.#concurrent(step, where);
    if ('repeat' in step) {
      for (let round = 0; round < step.repeat; round++) await this.#steps(step.steps, `${where}(round ${round + 1})`);
      return;
    }
    if ('connect' in step) return this.#connect(step, fail);
    if ('client' in step) return clients.open(step, fail, this.#raw.has(step.client));
    if ('send' in step) return this.#send(step, fail, land);
    if ('expect' in step) return berth(step.expect) ? clients.expect(step, fail) : this.#expect(step, fail);
    if ('expectResumed' in step) return clients.expectResumed(step, fail);
    if ('expectMessages' in step) return clients.expectMessages(step, fail);
    if ('expectClose' in step) return berth(step.expectClose) ? clients.expectClose(step, fail) : this.#expectClose(step, fail);
    if ('pause' in step) {
      this.#rawClient(step.pause, 'pause', fail).ws.pause();
      this.timeline.add(step.pause, 'paused');
      return;
    }
    if ('resume' in step) {
      this.#rawClient(step.resume, 'resume', fail).ws.resume();
      this.timeline.add(step.resume, 'resumed');
      return;
    }
    if ('close' in step) return berth(step.close) ? clients.close(step, fail, land) : this.#close(step, fail, land);
    if ('drop' in step) return berth(step.drop) ? clients.drop(step.drop, fail, land) : this.#drop(step.drop, fail, land);
    if ('reconnect' in step) return clients.reconnect(step, fail, land);
    if ('move' in step) return clients.move(step, fail);
    if ('advance' in step) {
      this.#clock.increment(step.advance);
      this.timeline.add('server', 'advanced', `${step.advance} ms of simulated time`);
      await settle();
      return;
    }
    if ('broadcast' in step) return this.#broadcast(step, fail);
    if ('assert' in step) return this.#assert(step.assert, step.runtime ?? 0, step.timeoutMs ?? DEFAULT_TIMEOUT_MS, fail);
  }

  /**
   * The group's steps in this run's order. A `reconnect` is first prepared
   * (its client reconnects and is welcomed, and the resume it sends is held),
   * so that its resume is what the order places. Steps that travel to the
   * server (sends, closes, drops, resumes) are issued together, each one's
   * synchronous part in the order; one that acts on the server at once
   * (`advance`, `broadcast`, `assert`) waits until what was issued before it
   * has reached the server, and what follows it is issued after it.
   */
  async #concurrent(step: Extract<Step, { concurrent: readonly Step[] }>, where: string): Promise<void> {
    const order = this.#order[this.#groups.get(step)!] ?? step.concurrent.map((_, i) => i);
    for (const [i, inner] of step.concurrent.entries()) {
      if (!('reconnect' in inner)) continue;
      const fail: Fail = (why) => {
        throw new StepFailure(`${where}.concurrent[${i}] (reconnect, prepared before its group): ${why}`);
      };
      await this.#clients.prepareReconnect(inner, fail);
    }
    const issued: Array<Promise<void>> = [];
    let landings: Array<Promise<void>> = [];
    for (const i of order) {
      const inner = step.concurrent[i]!;
      const at = `${where}.concurrent[${i}]`;
      if (actsAtOnce(inner)) {
        await Promise.all(landings);
        landings = [];
        await this.#step(inner, at);
        continue;
      }
      const landed: Array<Promise<void>> = [];
      const done = this.#step(inner, at, (promise) => landed.push(promise));
      // Awaited below, all together; until then a failure must not count as unhandled.
      for (const promise of [done, ...landed]) promise.catch(() => {});
      issued.push(done);
      landings.push(...landed);
    }
    await Promise.all([...issued, ...landings]);
  }

  // ---- Raw clients -------------------------------------------------------------

  async #connect(step: Extract<Step, { connect: string }>, fail: Fail): Promise<void> {
    const name = step.connect;
    if (this.#clients.has(name)) fail(`${name} is a berth/client client already`);
    const tag = `${name}#${++this.#generation}`;
    const headers: Record<string, string> = { ...step.headers, [CLIENT_HEADER]: tag };
    if (step.user !== undefined) headers[USER_HEADER] = step.user;
    const path = step.path ?? '/';
    const ws = this.#dial(path, [], { headers, ...(step.origin !== undefined && { origin: step.origin }) }, step.runtime);
    const client = new RawClient(name, tag, ws, this.timeline, () => this.#changed.notify());
    this.timeline.add(name, 'connect', path);
    const outcome = await client.opened();
    if (outcome !== 'open') {
      this.timeline.add(name, 'refused', `HTTP ${outcome.status}`);
      if (step.expectRefused === undefined) fail(`the upgrade was refused with HTTP ${outcome.status}`);
      if (outcome.status !== step.expectRefused) fail(`refused with HTTP ${outcome.status}, expected ${step.expectRefused}`);
      return;
    }
    if (step.expectRefused !== undefined) fail(`connected, expected a refusal with HTTP ${step.expectRefused}`);
    this.#raw.set(name, client);
  }

  async #send(step: Extract<Step, { send: string }>, fail: Fail, land: Land): Promise<void> {
    const data = payload(step);
    if (data instanceof Error) return fail(data.message);
    if (this.#clients.has(step.send)) return this.#clients.send(step.send, data, fail, land);
    const client = this.#rawClient(step.send, 'send', fail);
    client.send(data);
    this.timeline.add(client.name, 'sent', describe(data));
    const { tag, written } = client;
    land(
      this.#run.landing(
        () => this.#record!.received(tag) >= written || client.closed !== undefined || !this.#run.openOnServer(tag),
        fail,
        `${client.name}'s message`,
      ),
    );
  }

  async #expect(step: Extract<Step, { expect: string }>, fail: Fail): Promise<void> {
    const client = this.#rawClient(step.expect, 'expect', fail, true);
    const timeoutMs = step.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    await this.#wait(
      () => client.received.length > client.taken || client.closed !== undefined,
      timeoutMs,
      fail,
      () => `no message within ${timeoutMs} ms`,
    );
    if (client.received.length <= client.taken) fail(`the connection closed (${client.closed!.code}) before a message arrived`);
    const problem = mismatch(client.received[client.taken++]!, step);
    if (problem !== undefined) fail(problem);
  }

  async #expectClose(step: Extract<Step, { expectClose: string }>, fail: Fail): Promise<void> {
    const client = this.#rawClient(step.expectClose, 'expectClose', fail, true);
    await expectClosed({ wait: (done, ms, failed, why) => this.#wait(done, ms, failed, why) }, () => client.closed, step, fail);
  }

  #close(step: Extract<Step, { close: string }>, fail: Fail, land: Land): void {
    const client = this.#rawClient(step.close, 'close', fail);
    client.ws.close(step.code, step.reason);
    this.timeline.add(step.close, 'sent', `close ${step.code ?? ''} ${step.reason ?? ''}`.trim());
    land(this.#run.landing(() => !this.#run.openOnServer(client.tag), fail, `${step.close}'s close`));
  }

  #drop(name: string, fail: Fail, land: Land): void {
    const client = this.#rawClient(name, 'drop', fail);
    if (!client.drop()) fail('the client has no socket (not connected)');
    this.timeline.add(name, 'dropped', 'TCP connection dropped, no close frame');
    land(this.#run.landing(() => this.#record!.closesOf(client.tag).length > 0, fail, `${name}'s drop`));
  }

  /** The raw client `name`; fails the step if there is none, it is a berth/client client, or (unless `closedToo`) it closed. */
  #rawClient(name: string, kind: string, fail: Fail, closedToo = false): RawClient {
    if (this.#clients.has(name)) fail(`${kind} is for raw clients; ${name} is a berth/client client`);
    const client = this.#raw.get(name);
    if (client === undefined) fail(`no client named ${name} is connected`);
    if (!closedToo && client!.closed !== undefined) fail(`${name} is closed`);
    return client!;
  }

  // ---- The server --------------------------------------------------------------

  #broadcast(step: Extract<Step, { broadcast: unknown }>, fail: Fail): void {
    const { room, user, all, count = 1 } = step.broadcast;
    const runtime = this.#runtimes[step.broadcast.runtime ?? 0]!;
    for (let i = 0; i < count; i++) {
      const data = payload(
        step.broadcast.text !== undefined && count > 1 ? { ...step.broadcast, text: `${step.broadcast.text}#${i}` } : step.broadcast,
      );
      if (data instanceof Error) return fail(data.message);
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
  }

  async #assert(assertion: Extract<Step, { assert: unknown }>['assert'], index: number, timeoutMs: number, fail: Fail): Promise<void> {
    const tagOf = (name: string) => this.#raw.get(name)?.tag ?? this.#clients.tagOf(name) ?? this.#record!.newestTag(name);
    const views = this.#clients.views();
    let problem: string | undefined;
    const runtime = this.#runtimes[index]!;
    const holds = () => (problem = this.#record!.check(assertion, runtime, tagOf, views, (id) => this.#connection(id))) === undefined;
    await this.#wait(holds, timeoutMs, fail, () => `after ${timeoutMs} ms: ${problem}`);
  }
}
