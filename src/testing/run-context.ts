/**
 * What the steps of one scenario run share: how a step fails, how it waits,
 * how a step in a concurrent group says when its effect reached the server,
 * and the run's record of the server. The runner builds it; the families of
 * steps (raw clients, `berth/client` clients) use it.
 */
import type { ServerRecord } from './server-record.js';
import type { Timeline } from './timeline.js';

export const DEFAULT_TIMEOUT_MS = 2000;

/** The scenario's `x-scenario-user` header, for the application's `authenticate`. */
export const USER_HEADER = 'x-scenario-user';

/** A step did not hold: the run stops with this message. */
export class StepFailure extends Error {}

/** Fails the step being run, naming it and why. */
export type Fail = (why: string) => never;

/**
 * Given, by a step issued in a concurrent group, what resolves once its
 * effect has reached the server: what a later `advance` or `broadcast` in the
 * group waits for.
 */
export type Land = (landed: Promise<void>) => void;

export interface RunContext {
  readonly timeline: Timeline;
  readonly record: ServerRecord;
  /** Resolves once `done()` holds; fails the step with `why()` after `timeoutMs`. */
  wait(done: () => boolean, timeoutMs: number, fail: Fail, why: () => string): Promise<void>;
  /** What a step gives `land`: it fails the step if `done()` does not hold within the default timeout. */
  landing(done: () => boolean, fail: Fail, what: string): Promise<void>;
  /** Whether the server holds connection `tag` open (false once it began closing it). */
  openOnServer(tag: string | undefined): boolean;
  /** A tag for a new connection of client `name`: `name#n`. */
  nextTag(name: string): string;
  /** Something happened that a step may be waiting for. */
  notify(): void;
}

/** Lets sockets and actors act on what just happened. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

/**
 * An `expectClose` step, for either kind of client: the close comes within the step's timeout,
 * with its code and reason if the step names them.
 */
export async function expectClosed(
  run: Pick<RunContext, 'wait'>,
  closed: () => { readonly code: number; readonly reason: string } | undefined,
  step: { readonly code?: number; readonly reason?: string; readonly timeoutMs?: number },
  fail: Fail,
): Promise<void> {
  const timeoutMs = step.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  await run.wait(
    () => closed() !== undefined,
    timeoutMs,
    fail,
    () => `no close within ${timeoutMs} ms`,
  );
  const { code, reason } = closed()!;
  if (step.code !== undefined && code !== step.code) fail(`closed with ${code}, expected ${step.code}`);
  if (step.reason !== undefined && reason !== step.reason) fail(`closed with reason "${reason}", expected "${step.reason}"`);
}
