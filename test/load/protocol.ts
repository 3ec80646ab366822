/**
 * The IPC protocol between the load tests (`harness.ts`) and their client
 * process (`clients.ts`), and the messages the clients understand:
 * - text `"<seq>"` or `"<seq>|<tag>"`, and binary whose first 4 bytes are `<seq>` (uint32 BE):
 *   counted per connection; every `<seq>` must be greater than the one before (order, no duplicates);
 * - text `"end"` (`END`): nothing after it is expected, the connection is done.
 * A client is `?i=<index>` (and `&slow=1` for a slow one) on the server's URL.
 */
export const END = 'end';

/** The argument `harness.ts` starts `clients.ts` with; without it the module refuses to run. */
export const CHILD_FLAG = '--berth-load-clients';

export type Command =
  /**
   * Opens `count` connections, `concurrency` at a time. The last `slow` ones pause
   * their socket right after the handshake (stop reading); with `paused` all do.
   * `keepText` keeps every text message; `checksum` keeps a CRC-32 of every binary one.
   */
  | {
      type: 'open';
      url: string;
      count: number;
      concurrency: number;
      slow?: number;
      paused?: boolean;
      keepText?: boolean;
      checksum?: boolean;
    }
  /** Resumes the paused sockets, at most `concurrency` reading at once (a slot frees when its connection is done). */
  | { type: 'resume'; concurrency?: number }
  /** Replies once every reading connection got `END` or closed, or after `waitMs` (then `complete` is false). */
  | { type: 'report'; waitMs: number }
  /** Closes every connection (1000) and replies once all are closed. */
  | { type: 'close' }
  /**
   * `cycles` times, `concurrency` at once: connect, wait for the server's first message,
   * send `hello:<i>`, wait until that comes back, close with 1000 and wait for the close.
   */
  | { type: 'churn'; url: string; cycles: number; concurrency: number; cycleTimeoutMs: number };

export interface ClientReport {
  readonly index: number;
  readonly slow: boolean;
  /** `<seq>` of every message but `END`, in arrival order. */
  readonly seqs: number[];
  /** Messages whose `<seq>` was not greater than the one before. */
  readonly violations: number;
  /** Byte length of every binary message. */
  readonly lengths: number[];
  /** CRC-32 of every binary message (with `checksum`). */
  readonly checksums: number[];
  /** Every text message but `END` (with `keepText`). */
  readonly texts: string[];
  readonly ended: boolean;
  /** Close code and reason the client saw, or null while open. */
  readonly closeCode: number | null;
  readonly closeReason: string;
}

export type Reply =
  | { type: 'opened'; opened: number; failures: string[] }
  | { type: 'resumed'; resumed: number }
  | { type: 'report'; complete: boolean; clients: ClientReport[] }
  | { type: 'closed' }
  | { type: 'churned'; completed: number; failureCount: number; failures: string[] }
  | { type: 'failed'; message: string };

export type Request = Command & { id: number };
export type Response = Reply & { id: number };

/** 127.0.0.2–127.0.0.254: spreads source addresses so 20 000 connections never run out of ephemeral ports. */
export function sourceAddress(index: number): string {
  return `127.0.0.${2 + (index % 253)}`;
}
