/**
 * The steps of a scenario's `berth/client` clients: open one, send, expect
 * its next stream message, its `resumed`, every message of a stream, its
 * close; close it, drop its connection (its network stays down), and bring
 * the network back so that it reconnects and resumes — at once, or prepared
 * up to its resume for a concurrent group to place.
 */
import { isDeepStrictEqual } from 'node:util';
import type WebSocket from 'ws';
import { ClientDriver, describeResumed, type KeptMessage } from './client-driver.js';
import { containsJson, describe, mismatch, streamMatches } from './matching.js';
import { DEFAULT_TIMEOUT_MS, USER_HEADER, expectClosed, settle, type Fail, type Land, type RunContext } from './run-context.js';
import type { Step } from './scenario.js';
import { CLIENT_HEADER, type ClientView } from './server-record.js';

type StepOf<K extends string> = Extract<Step, Record<K, unknown>>;

/** Opens a `ws` WebSocket to runtime `runtime` of the scenario at `path`, as the runner's transport does. */
export type Dialer = (path: string, protocols: readonly string[], options: WebSocket.ClientOptions, runtime: number) => WebSocket;

export class ClientSteps {
  readonly #run: RunContext;
  readonly #dial: Dialer;
  /** The URL a client is given for `path` (its sockets go where the dialer sends them, whatever it says). */
  readonly #url: (path: string, runtime: number) => string;
  readonly #drivers = new Map<string, ClientDriver>();
  /** Which runtime each client's connections go to: where it opened, or was last moved. */
  readonly #targets = new Map<string, number>();

  constructor(run: RunContext, dial: Dialer, url: (path: string, runtime: number) => string) {
    this.#run = run;
    this.#dial = dial;
    this.#url = url;
  }

  has(name: string): boolean {
    return this.#drivers.has(name);
  }

  /** The connection client `name` has now, if it is one of these. */
  tagOf(name: string): string | undefined {
    return this.#drivers.get(name)?.network.tag;
  }

  views(): ClientView[] {
    return [...this.#drivers.values()].map((driver) => ({
      name: driver.name,
      tag: driver.network.tag,
      open: driver.state === 'open',
      rooms: () => driver.rooms(),
    }));
  }

  /** Closes every client and its socket at once (the run is over). */
  stop(): void {
    for (const driver of this.#drivers.values()) driver.stop();
  }

  /** Opens the client and waits until it is open; `taken`: a raw client has the name already. */
  async open(step: StepOf<'client'>, fail: Fail, taken: boolean): Promise<void> {
    const name = step.client;
    if (taken || this.#drivers.has(name)) fail(`a client named ${name} exists already`);
    const headers: Record<string, string> = { ...step.headers };
    if (step.user !== undefined) headers[USER_HEADER] = step.user;
    const path = step.path ?? '/';
    const runtime = step.runtime ?? 0;
    this.#targets.set(name, runtime);
    const dial = (protocols: readonly string[]) => {
      const tag = this.#run.nextTag(name);
      return { tag, ws: this.#dial(path, protocols, { headers: { ...headers, [CLIENT_HEADER]: tag } }, this.#targets.get(name)!) };
    };
    const driver = new ClientDriver(name, this.#url(path, runtime), dial, this.#run.timeline, () => this.#run.notify());
    this.#drivers.set(name, driver);
    const timeoutMs = step.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    await this.#run.wait(
      () => driver.state === 'open' || driver.closed !== undefined,
      timeoutMs,
      fail,
      () => `${name} did not open within ${timeoutMs} ms (it is ${driver.state})`,
    );
    if (driver.closed !== undefined) fail(`${name} closed for good (${driver.closed.code}) before it opened`);
  }

  /** Sends through the client: at once while it is open, queued by the client while it is away. */
  send(name: string, data: string | Buffer, fail: Fail, land: Land): void {
    const driver = this.#driver(name, 'send', fail);
    const tag = driver.state === 'open' ? driver.network.tag : undefined;
    if (!driver.client.send(typeof data === 'string' ? data : new Uint8Array(data)))
      fail(`${name}'s client refused the message (it is ${driver.state}, or its queue is full)`);
    this.#run.timeline.add(name, 'sent', tag === undefined ? `${describe(data)} (queued while ${driver.state})` : describe(data));
    if (tag === undefined) return;
    const written = driver.written(tag);
    land(this.#run.landing(() => this.#run.record.received(tag) >= written || !this.#run.openOnServer(tag), fail, `${name}'s message`));
  }

  async expect(step: StepOf<'expect'>, fail: Fail): Promise<void> {
    const driver = this.#driver(step.expect, 'expect', fail);
    const timeoutMs = step.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const next = () => driver.messages.find((message) => !message.taken && streamMatches(message.stream, step.stream));
    const on = step.stream === undefined ? '' : ` on ${step.stream}`;
    await this.#run.wait(
      () => next() !== undefined || driver.closed !== undefined,
      timeoutMs,
      fail,
      () => `no message${on} within ${timeoutMs} ms`,
    );
    const message = next();
    if (message === undefined) return fail(`${step.expect} closed (${driver.closed!.code}) before a message${on} arrived`);
    message.taken = true;
    const problem = mismatch(message, step);
    if (problem !== undefined) fail(`${message.stream} #${message.offset}: ${problem}`);
  }

  async expectResumed(step: StepOf<'expectResumed'>, fail: Fail): Promise<void> {
    const name = step.expectResumed;
    const driver = this.#driver(name, 'expectResumed', fail);
    const timeoutMs = step.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    await this.#run.wait(
      () => driver.resumes.length > driver.resumesTaken,
      timeoutMs,
      fail,
      () => `${name} was not resumed within ${timeoutMs} ms (it is ${driver.state})`,
    );
    const resumed = driver.resumes[driver.resumesTaken++]!;
    if (step.recovered !== undefined && resumed.recovered !== step.recovered)
      fail(`${name}'s ${describeResumed(resumed)}; expected ${step.recovered ? 'recovered' : 'not recovered'}`);
    if (step.reason !== undefined && resumed.reason !== step.reason)
      fail(`${name}'s ${describeResumed(resumed)}; expected the reason ${step.reason}`);
    if (step.lost !== undefined) {
      const listed = (lost: ReadonlyArray<{ stream: string; reason: string }>) =>
        lost.map(({ stream, reason }) => `${stream} (${reason})`).sort();
      const actual = listed(resumed.lost);
      const expected = listed(step.lost);
      if (!isDeepStrictEqual(actual, expected)) fail(`${name} lost [${actual.join(', ')}], expected [${expected.join(', ')}]`);
    }
  }

  /**
   * Every message of the stream, over all the client's connections: each
   * offset once and increasing within an epoch, and exactly the texts (or
   * JSON) given, once that many have arrived.
   */
  async expectMessages(step: StepOf<'expectMessages'>, fail: Fail): Promise<void> {
    const name = step.expectMessages;
    const driver = this.#driver(name, 'expectMessages', fail);
    const timeoutMs = step.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const onStream = () => driver.messages.filter((message) => message.stream === step.stream);
    const expected = step.texts ?? step.json;
    if (expected !== undefined) {
      await this.#run.wait(
        () => onStream().length >= expected.length,
        timeoutMs,
        fail,
        () => `${name} received ${listed(onStream())} on ${step.stream} within ${timeoutMs} ms, expected ${expected.length} messages`,
      );
    }
    // A duplicate right behind the last expected message is in by now.
    await settle();
    const got = onStream();
    const seen = new Set<string>();
    for (const message of got) {
      const key = `${message.epoch}:${message.offset}`;
      if (seen.has(key)) fail(`${name} received ${step.stream} #${message.offset} twice: ${listed(got)}`);
      seen.add(key);
    }
    for (const [i, message] of got.entries()) {
      const before = got[i - 1];
      if (before !== undefined && before.epoch === message.epoch && message.offset < before.offset)
        fail(`${name} received ${step.stream} #${message.offset} after #${before.offset}: ${listed(got)}`);
    }
    const texts = got.map((message) => message.text);
    if (step.texts !== undefined && !isDeepStrictEqual(texts, step.texts))
      fail(`${name} received ${listed(got)} on ${step.stream}, expected [${step.texts.join(', ')}]`);
    if (step.json !== undefined && (got.length !== step.json.length || !step.json.every((value, i) => containsJson(texts[i], value))))
      fail(`${name} received ${listed(got)} on ${step.stream}, expected messages containing ${JSON.stringify(step.json)}`);
    for (const message of got) message.taken = true;
  }

  async expectClose(step: StepOf<'expectClose'>, fail: Fail): Promise<void> {
    const driver = this.#driver(step.expectClose, 'expectClose', fail);
    await expectClosed(this.#run, () => driver.closed, step, fail);
  }

  /** Closes the client for good. */
  close(step: StepOf<'close'>, fail: Fail, land: Land): void {
    const driver = this.#driver(step.close, 'close', fail);
    const tag = driver.network.tag;
    driver.client.close(step.code ?? 1000, step.reason ?? '');
    this.#run.timeline.add(step.close, 'sent', `close ${step.code ?? 1000} ${step.reason ?? ''}`.trim());
    if (tag !== undefined) land(this.#run.landing(() => !this.#run.openOnServer(tag), fail, `${step.close}'s close`));
  }

  /** Drops the client's connection, and waits until both ends noticed: the server kept the session, the client is reconnecting. */
  async drop(name: string, fail: Fail, land: Land): Promise<void> {
    const driver = this.#driver(name, 'drop', fail);
    const tag = driver.network.tag;
    if (!driver.network.drop() || tag === undefined) fail(`${name} has no connection to drop (it is ${driver.state})`);
    driver.dropped = tag;
    this.#run.timeline.add(name, 'dropped', 'TCP connection dropped, no close frame; the network stays down until reconnect');
    const noticed = this.#run.landing(() => this.#run.record.closesOf(tag).length > 0 && driver.state !== 'open', fail, `${name}'s drop`);
    land(noticed);
    await noticed;
  }

  /** Before its concurrent group: the network comes back, and what the client then writes (its resume) is held. */
  async prepareReconnect(step: StepOf<'reconnect'>, fail: Fail): Promise<void> {
    const name = step.reconnect;
    const driver = this.#driver(name, 'reconnect', fail);
    if (!driver.network.down) fail(`${name} was not dropped: nothing to reconnect`);
    driver.network.up(true);
    this.#run.timeline.add(name, 'network', 'back up; what the client writes waits for its turn in the concurrent group');
    const timeoutMs = step.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    await this.#run.wait(
      () => driver.network.held > 0 || this.#back(driver),
      timeoutMs,
      fail,
      () => `${name} did not get as far as its resume within ${timeoutMs} ms (it is ${driver.state})`,
    );
  }

  /** The network comes back (or, prepared, lets the held resume go); waits until the client is open again. */
  async reconnect(step: StepOf<'reconnect'>, fail: Fail, land: Land): Promise<void> {
    const name = step.reconnect;
    const driver = this.#driver(name, 'reconnect', fail);
    if (driver.network.holding) {
      const tag = driver.network.tag!;
      driver.network.release();
      land(this.#run.landing(() => this.#run.record.answeredResume(tag) || this.#back(driver), fail, `${name}'s resume`));
    } else {
      if (!driver.network.down) fail(`${name} was not dropped: nothing to reconnect`);
      driver.network.up(false);
      this.#run.timeline.add(name, 'network', 'back up');
    }
    const timeoutMs = step.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    await this.#run.wait(
      () => this.#back(driver) || driver.closed !== undefined,
      timeoutMs,
      fail,
      () => `${name} was not open again within ${timeoutMs} ms (it is ${driver.state})`,
    );
    if (driver.closed !== undefined) fail(`${name} closed for good (${driver.closed.code}) instead of reconnecting`);
  }

  /**
   * Sends the client to another runtime: its connection now is cut (no close frame) and it comes back there, resuming;
   * waits until it is open again. A dropped client only changes where its `reconnect` goes.
   */
  async move(step: StepOf<'move'>, fail: Fail): Promise<void> {
    const name = step.move;
    const driver = this.#driver(name, 'move', fail);
    const from = this.#targets.get(name);
    this.#targets.set(name, step.to);
    if (driver.network.down) {
      this.#run.timeline.add(name, 'network', `moved from runtime ${from} to ${step.to}; reconnects there once back up`);
      return;
    }
    const tag = driver.network.tag;
    if (!driver.network.cut() || tag === undefined) fail(`${name} has no connection to move (it is ${driver.state})`);
    this.#run.timeline.add(name, 'network', `moved from runtime ${from} to ${step.to}: its connection cut, no close frame`);
    const timeoutMs = step.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    await this.#run.wait(
      () => (driver.state === 'open' && driver.network.tag !== tag) || driver.closed !== undefined,
      timeoutMs,
      fail,
      () => `${name} was not open again on runtime ${step.to} within ${timeoutMs} ms (it is ${driver.state})`,
    );
    if (driver.closed !== undefined) fail(`${name} closed for good (${driver.closed.code}) instead of moving`);
  }

  /** Whether a dropped client is open again, on a connection other than the one it lost. */
  #back(driver: ClientDriver): boolean {
    return driver.state === 'open' && driver.network.tag !== driver.dropped;
  }

  #driver(name: string, kind: string, fail: Fail): ClientDriver {
    const driver = this.#drivers.get(name);
    if (driver === undefined) return fail(`${kind}: no berth/client client named ${name} (open one with "client")`);
    return driver;
  }
}

const listed = (messages: readonly KeptMessage[]) =>
  `[${messages.map((message) => `#${message.offset} ${message.text ?? `${message.bytes.length} bytes`}`).join(', ')}]`;
