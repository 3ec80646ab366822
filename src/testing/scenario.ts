/**
 * What a scenario is: named clients and the steps they take, as data — the
 * same shape in TypeScript and in a scenario file (JSON). `parseScenario`
 * checks a value read from a file and says which step is wrong and why.
 */

/** A message a step sends or expects: text, JSON (sent as text), or `bytes` of binary. */
export interface MessageSpec {
  readonly text?: string;
  /** Sent as `JSON.stringify(json)`; expected as a JSON text frame that contains these fields (deep, partial). */
  readonly json?: unknown;
  /** A binary message of this many bytes. */
  readonly bytes?: number;
}

/** A stream a resume could not recover, and why (`trimmed`, `epoch-changed` …), as berth/client's `resumed` event names it. */
export interface LostStream {
  readonly stream: string;
  readonly reason: string;
}

/** One step of a scenario: an object with exactly one of the keys below (docs/testing.md lists them). */
export type Step =
  /** Opens a client named `connect`. `user` goes in the `x-scenario-user` header for the app's `authenticate`. */
  | {
      readonly connect: string;
      /** Which of the scenario's runtimes it connects to. [default 0] */
      readonly runtime?: number;
      readonly path?: string;
      readonly user?: string;
      readonly origin?: string;
      readonly headers?: Readonly<Record<string, string>>;
      /** The upgrade must be refused with this HTTP status instead. */
      readonly expectRefused?: number;
    }
  /**
   * Opens a `berth/client` client named `client` (it speaks `berth.v1`, reconnects and resumes by itself)
   * and waits until it is open. `user` goes in the `x-scenario-user` header, as for `connect`.
   */
  | {
      readonly client: string;
      /** Which of the scenario's runtimes it connects to (until a `move`). [default 0] */
      readonly runtime?: number;
      readonly path?: string;
      readonly user?: string;
      readonly headers?: Readonly<Record<string, string>>;
      readonly timeoutMs?: number;
    }
  /** Sends a message; a `berth/client` client sends it as a `berth.v1` message (queued while it is away). */
  | ({ readonly send: string } & MessageSpec)
  /**
   * The client's next message, within `timeoutMs` [default 2000]: equal `text`, containing `json`, matching `pattern`, or of
   * `length` bytes. For a `berth/client` client, its next message not yet expected, of `stream` if given (`conn:*` matches
   * any stream of that prefix, as the client's own connection streams).
   */
  | ({
      readonly expect: string;
      readonly pattern?: string;
      readonly length?: number;
      readonly stream?: string;
      readonly timeoutMs?: number;
    } & MessageSpec)
  /**
   * A `berth/client` client's next `resumed` event: `recovered` or not, with this `reason` and exactly these `lost` streams
   * (in any order) if given. Without `recovered`, either outcome passes.
   */
  | {
      readonly expectResumed: string;
      readonly recovered?: boolean;
      readonly reason?: string;
      readonly lost?: readonly LostStream[];
      readonly timeoutMs?: number;
    }
  /**
   * Every message a `berth/client` client has received on `stream` over all its connections: each offset once and
   * increasing (always checked), and exactly these `texts` (or messages containing these `json` values), in order, once
   * that many have arrived within `timeoutMs`.
   */
  | {
      readonly expectMessages: string;
      readonly stream: string;
      readonly texts?: readonly string[];
      readonly json?: readonly unknown[];
      readonly timeoutMs?: number;
    }
  /** The client sees the connection close, with this code and reason if given (a `berth/client` client: closed for good). */
  | { readonly expectClose: string; readonly code?: number; readonly reason?: string; readonly timeoutMs?: number }
  /** The client stops reading from its socket (a slow client) / reads again. */
  | { readonly pause: string }
  | { readonly resume: string }
  /** The client closes with a close frame. */
  | { readonly close: string; readonly code?: number; readonly reason?: string }
  /**
   * The client's TCP connection drops: no close frame. A `berth/client` client's network then stays down (its reconnects
   * wait) until `reconnect`.
   */
  | { readonly drop: string }
  /**
   * A dropped `berth/client` client's network comes back: it reconnects, resumes, and the step waits until it is open
   * again (after its `resumed`). In a `concurrent` group its resume is what the group's order places.
   */
  | { readonly reconnect: string; readonly timeoutMs?: number }
  /**
   * A `berth/client` client is sent to runtime `to` of the scenario, as a load balancer moves a client: its
   * connections go there from now on. A connected client's connection is cut (no close frame) and the step waits
   * until it is open again there, after its `resumed` (whatever its outcome: `expectResumed` says which). A dropped
   * client only changes where its `reconnect` will go.
   */
  | { readonly move: string; readonly to: number; readonly timeoutMs?: number }
  /** Simulated time passes for every actor delay (heartbeats, close timeouts). */
  | { readonly advance: number }
  /** The server sends `count` [default 1] broadcasts (`text` gets `#i` appended when count > 1). */
  | {
      readonly broadcast: { readonly room?: string; readonly user?: string; readonly all?: true } & MessageSpec & {
          readonly count?: number;
          /** Which of the scenario's runtimes sends it. [default 0] */
          readonly runtime?: number;
        };
    }
  /** The server's state, eventually (within `timeoutMs`, default 2000). Client names stand for their connections. */
  | {
      readonly assert: ServerAssertion;
      readonly timeoutMs?: number;
      /** Whose state, of the scenario's runtimes. [default 0] */ readonly runtime?: number;
    }
  /** These steps are issued together; the runner tries their orders (see `runScenario`). */
  | { readonly concurrent: readonly Step[] }
  /** The steps again, `repeat` times. */
  | { readonly repeat: number; readonly steps: readonly Step[] };

/** What an `assert` step expects of the server, eventually; every field is optional. */
export interface ServerAssertion {
  /** Room → the clients in it, in any order; a room absent here may exist unless `rooms` lists it. */
  readonly rooms?: Readonly<Record<string, readonly string[]>>;
  readonly users?: Readonly<Record<string, readonly string[]>>;
  /** Client → `open`, `disconnecting` or `closed` (as the server sees it). */
  readonly states?: Readonly<Record<string, 'open' | 'disconnecting' | 'closed'>>;
  /** Client → how its connection closed, as the server's `close` event said. */
  readonly closed?: Readonly<Record<string, { readonly code?: number; readonly reason?: string; readonly cause?: string }>>;
  /** Client → how many `close` events its connection had (cleanup runs exactly once: 1). */
  readonly closeEvents?: Readonly<Record<string, number>>;
  /** Client → at least this many messages were dropped for it (the `dropped` events' counts). */
  readonly minDropped?: Readonly<Record<string, number>>;
  /** Connections the server holds. */
  readonly connections?: number;
  /**
   * No ghost: every member of every room, and every connection of every user, is an open connection; and every open
   * `berth/client` client is attached to exactly the `room:` streams of the rooms its connection is in.
   */
  readonly noGhosts?: true;
  /** Client → the most connections of it the server has held open at once, over the whole run (1: never two at once). */
  readonly maxLive?: Readonly<Record<string, number>>;
}

/** `ws`: real sockets on loopback; `memory`: in-memory sockets through the same `ws` and HTTP code. */
export type TransportName = 'ws' | 'memory';

/** Named clients and their steps, with the runtime options and transports to run them on (docs/testing.md). */
export interface Scenario {
  readonly name: string;
  readonly description?: string;
  /** Transports it makes sense on. [default both] */
  readonly transports?: readonly TransportName[];
  /**
   * How many runtimes to start, each by a call of the app's factory, on one memory bus (the `adapter` the factory is
   * given; an app may bring its own cluster adapter instead). Steps name one by its index. [default 1]
   */
  readonly runtimes?: number;
  /** Passed to the app's runtime factory, beside the runner's own options. */
  readonly options?: Readonly<Record<string, unknown>>;
  readonly steps: readonly Step[];
}

const STEP_KINDS = [
  'connect',
  'client',
  'send',
  'expect',
  'expectResumed',
  'expectMessages',
  'expectClose',
  'pause',
  'resume',
  'close',
  'drop',
  'reconnect',
  'move',
  'advance',
  'broadcast',
  'assert',
  'concurrent',
  'repeat',
] as const;
export type StepKind = (typeof STEP_KINDS)[number];

/** Which kind a step is (its first known key). */
export function kindOf(step: Step): StepKind {
  const kind = STEP_KINDS.find((key) => key in step);
  if (kind === undefined) throw new TypeError(`not a step: ${JSON.stringify(step)}`);
  return kind;
}

/** Checks a scenario read from a file; throws a `TypeError` naming the step that is wrong. */
export function parseScenario(value: unknown, source = 'scenario'): Scenario {
  if (typeof value !== 'object' || value === null) throw new TypeError(`${source}: a scenario is a JSON object`);
  const scenario = value as Partial<Scenario>;
  if (typeof scenario.name !== 'string' || scenario.name === '') throw new TypeError(`${source}: "name" must be a non-empty string`);
  if (!Array.isArray(scenario.steps)) throw new TypeError(`${source}: "steps" must be an array`);
  for (const transport of scenario.transports ?? []) {
    if (transport !== 'ws' && transport !== 'memory')
      throw new TypeError(`${source}: unknown transport ${JSON.stringify(transport)} (ws or memory)`);
  }
  const runtimes = scenario.runtimes ?? 1;
  if (!Number.isInteger(runtimes) || runtimes < 1 || runtimes > 16)
    throw new TypeError(`${source}: "runtimes" must be a whole number from 1 to 16`);
  checkSteps(scenario.steps, `${source} (${scenario.name})`, 'steps', runtimes);
  return scenario as Scenario;
}

function checkSteps(steps: readonly unknown[], source: string, where: string, runtimes: number): void {
  steps.forEach((step, index) => {
    const at = `${source}: ${where}[${index}]`;
    if (typeof step !== 'object' || step === null) throw new TypeError(`${at} is not an object`);
    const kinds = STEP_KINDS.filter((key) => key in step);
    if (kinds.length !== 1) {
      const keys = Object.keys(step).map((key) => JSON.stringify(key));
      const has = kinds.length > 0 ? kinds.join(', ') : `no known step (its keys: ${keys.join(', ') || 'none'})`;
      throw new TypeError(`${at} must have exactly one of ${STEP_KINDS.join(', ')}; it has ${has}`);
    }
    const kind = kinds[0]!;
    const field = (step as Record<string, unknown>)[kind];
    if (kind === 'advance' || kind === 'repeat') {
      if (typeof field !== 'number' || !(field >= 0)) throw new TypeError(`${at}: "${kind}" must be a number ≥ 0`);
    } else if (kind === 'broadcast' || kind === 'assert') {
      if (typeof field !== 'object' || field === null) throw new TypeError(`${at}: "${kind}" must be an object`);
    } else if (kind === 'concurrent') {
      if (!Array.isArray(field) || field.length < 2) throw new TypeError(`${at}: "concurrent" must list at least two steps`);
      checkSteps(field, source, `${where}[${index}].concurrent`, runtimes);
    } else if (typeof field !== 'string' || field === '') {
      throw new TypeError(`${at}: "${kind}" must name a client`);
    }
    if (kind === 'repeat') {
      const inner = (step as { steps?: unknown }).steps;
      if (!Array.isArray(inner)) throw new TypeError(`${at}: "repeat" needs "steps"`);
      checkSteps(inner, source, `${where}[${index}].steps`, runtimes);
    }
    checkFields(kind, step as Record<string, unknown>, at, runtimes);
  });
}

const isString = (value: unknown) => typeof value === 'string';
const isStringMap = (value: unknown) =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && Object.values(value).every(isString);

/** The fields beside a step's kind that the runner reads: each of the right type, so that none is silently ignored. */
function checkFields(kind: StepKind, step: Record<string, unknown>, at: string, runtimes: number): void {
  const optional = (key: string, test: (value: unknown) => boolean, what: string) => {
    if (step[key] !== undefined && !test(step[key])) throw new TypeError(`${at}: "${key}" of ${kind} must be ${what}`);
  };
  optional('timeoutMs', (value) => typeof value === 'number' && value >= 0, 'a number ≥ 0');
  const isRuntime = (value: unknown) => Number.isInteger(value) && (value as number) >= 0 && (value as number) < runtimes;
  const aRuntime = `the index of one of the scenario's ${runtimes} runtime${runtimes === 1 ? '' : 's'} (0 to ${runtimes - 1})`;
  if (kind === 'connect' || kind === 'client' || kind === 'assert') optional('runtime', isRuntime, aRuntime);
  if (
    kind === 'broadcast' &&
    !((step.broadcast as { runtime?: unknown }).runtime === undefined || isRuntime((step.broadcast as { runtime?: unknown }).runtime))
  )
    throw new TypeError(`${at}: "runtime" of broadcast must be ${aRuntime}`);
  if (kind === 'move' && !isRuntime(step.to)) throw new TypeError(`${at}: move needs "to", ${aRuntime}`);
  if (kind === 'client') {
    optional('user', isString, 'a string');
    optional('path', (value) => isString(value) && value.startsWith('/'), 'a path starting with /');
    optional('headers', isStringMap, 'an object of strings');
  } else if (kind === 'expect') {
    optional('stream', (value) => isString(value) && value !== '', 'a stream name (as room:lobby, or conn:* for any of a prefix)');
  } else if (kind === 'expectResumed') {
    optional('recovered', (value) => typeof value === 'boolean', 'true or false');
    optional('reason', isString, 'a string');
    optional(
      'lost',
      (value) =>
        Array.isArray(value) &&
        value.every((item) => typeof item === 'object' && item !== null && isString(item.stream) && isString(item.reason)),
      'a list of { "stream": …, "reason": … }',
    );
    if (step.recovered === true && (step.lost !== undefined || step.reason !== undefined))
      throw new TypeError(`${at}: a resume expected recovered has no "lost" or "reason"`);
  } else if (kind === 'expectMessages') {
    if (!isString(step.stream) || step.stream === '') throw new TypeError(`${at}: expectMessages needs "stream" (as "room:lobby")`);
    optional('texts', (value) => Array.isArray(value) && value.every(isString), 'a list of strings');
    optional('json', Array.isArray, 'a list');
    if (step.texts !== undefined && step.json !== undefined) throw new TypeError(`${at}: expectMessages takes "texts" or "json", not both`);
  } else if (kind === 'assert') {
    const assertion = step.assert as Record<string, unknown>;
    if (assertion.noGhosts !== undefined && assertion.noGhosts !== true) throw new TypeError(`${at}: "noGhosts" can only be true`);
    const maxLive = assertion.maxLive;
    if (
      maxLive !== undefined &&
      (typeof maxLive !== 'object' || maxLive === null || !Object.values(maxLive).every((n) => Number.isInteger(n) && n >= 0))
    )
      throw new TypeError(`${at}: "maxLive" must map client names to whole numbers`);
  }
}
