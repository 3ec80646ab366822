/**
 * What each client of a durable cluster test saw, in arrival order — messages
 * (stream, offset, epoch, publisher, seq), `lost` events and `resumed` events —
 * and the check of it: per client and stream, every message of every publisher
 * exactly once and in the publisher's order, up to what that publisher is known
 * to have sent; each gap (a publisher's seq, a stream's offset or epoch) explained
 * by a loss the client was told of (a `lost` event for the stream, or a resume not
 * recovered that names it) since the stream's previous message; and no
 * `(stream, epoch, offset)` carrying two payloads across all clients.
 * A `lost` says where the stream stands now: what lay before is lost, what comes
 * after must come, so the stream's next message is the one right after it. And a
 * loss told never excuses the tail: the last message of every publisher owed
 * (sent after whatever happened) reaches every client.
 *
 * Where the engine itself may refuse a publish (Redis down, a failover under
 * way), `unpublished` lets a gap pass that no client saw any message of: those
 * messages never got an offset (the offset check still holds across the gap),
 * so they are counted apart, not as delivered losses.
 */

export type Seen =
  | { kind: 'msg'; stream: string; offset: number; epoch: string; p: string; q: number; data: string }
  /** `offset`, `epoch`: where the stream stands now, as the client's position says after the event. */
  | { kind: 'lost'; stream: string; reason: string; offset: number; epoch: string }
  | { kind: 'resumed'; recovered: boolean; reason: string | undefined; lost: ReadonlyArray<{ stream: string; reason: string }> };

/** One client's record. */
export interface ClientLog {
  readonly name: string;
  readonly seen: Seen[];
}

/** Per publisher and room: how many messages are owed to every client (seqs 0 … n-1). */
export type Owed = Record<string, Record<string, number>>;

export interface Verdict {
  /** What is wrong, one line each (empty: the run holds). */
  readonly problems: string[];
  /** Loss notices the clients got (a `lost` event, or a stream named by a resume not recovered). */
  readonly told: number;
  /** Messages owed that clients did not get, under a loss they were told of. */
  readonly toldMissing: number;
  readonly delivered: number;
  /** Messages owed that no client got, in gaps no offset skip shows (with `unpublished`): refused by the engine. */
  readonly unpublished: number;
  readonly resumes: { recovered: number; notRecovered: number };
}

const streamOf = (room: string) => `room:${room}`;

/** Whether the client has received, of every room and publisher, the last message owed. */
export function complete(log: ClientLog, owed: Owed): boolean {
  const last = lastSeqs(log);
  for (const [publisher, rooms] of Object.entries(owed))
    for (const [room, count] of Object.entries(rooms))
      if (count > 0 && (last.get(`${streamOf(room)} ${publisher}`) ?? -1) < count - 1) return false;
  return true;
}

function lastSeqs(log: ClientLog): Map<string, number> {
  const last = new Map<string, number>();
  for (const event of log.seen) if (event.kind === 'msg') last.set(`${event.stream} ${event.p}`, event.q);
  return last;
}

/** Checks every client's record against what was owed. */
export function check(logs: readonly ClientLog[], owed: Owed, options: { unpublished?: boolean } = {}): Verdict {
  const problems: string[] = [];
  let told = 0;
  let toldMissing = 0;
  const got = new Set<string>();
  for (const log of logs) for (const event of log.seen) if (event.kind === 'msg') got.add(`${event.stream} ${event.p} ${event.q}`);
  /** The messages `unpublished` excused: owed, and no client got them. */
  const unpublishedOf = new Set<string>();
  const excused = (stream: string, p: string, from: number, to: number) => {
    if (options.unpublished !== true) return false;
    for (let q = from; q <= to; q++) if (got.has(`${stream} ${p} ${q}`)) return false;
    for (let q = from; q <= to; q++) unpublishedOf.add(`${stream} ${p} ${q}`);
    return true;
  };
  let delivered = 0;
  const resumes = { recovered: 0, notRecovered: 0 };
  const payloads = new Map<string, { data: string; client: string }>();
  for (const log of logs) {
    /** Per stream: index in `seen` of the last loss notice. */
    const notice = new Map<string, number>();
    /** Per stream and publisher: the last seq, and the index of its message. */
    const bySeq = new Map<string, { q: number; at: number }>();
    /** Per stream: the last offset and epoch, and the index of its message. */
    const byOffset = new Map<string, { offset: number; epoch: string; at: number }>();
    const explained = (stream: string, since: number) => (notice.get(stream) ?? -1) > since;
    log.seen.forEach((event, at) => {
      if (event.kind === 'lost') {
        told++;
        notice.set(event.stream, at);
        byOffset.set(event.stream, { offset: event.offset, epoch: event.epoch, at });
        return;
      }
      if (event.kind === 'resumed') {
        if (event.recovered) resumes.recovered++;
        else resumes.notRecovered++;
        for (const { stream } of event.lost) {
          told++;
          notice.set(stream, at);
        }
        return;
      }
      delivered++;
      const key = `${event.stream} ${event.epoch} ${event.offset}`;
      const earlier = payloads.get(key);
      if (earlier === undefined) payloads.set(key, { data: event.data, client: log.name });
      else if (earlier.data !== event.data)
        problems.push(`${key} carried ${earlier.data} to ${earlier.client} and ${event.data} to ${log.name}`);
      const position = byOffset.get(event.stream);
      if (position !== undefined) {
        const since = position.at;
        if (position.epoch !== event.epoch) {
          if (!explained(event.stream, since))
            problems.push(
              `${log.name}: ${event.stream} went from epoch ${position.epoch} to ${event.epoch} unexplained (at #${event.offset})`,
            );
        } else if (event.offset <= position.offset) {
          problems.push(`${log.name}: ${event.stream} offset ${event.offset} after ${position.offset} (repeated or out of order)`);
        } else if (event.offset > position.offset + 1 && !explained(event.stream, since)) {
          problems.push(`${log.name}: ${event.stream} skipped offsets ${position.offset + 1}…${event.offset - 1} unexplained`);
        }
      }
      byOffset.set(event.stream, { offset: event.offset, epoch: event.epoch, at });
      const seqKey = `${event.stream} ${event.p}`;
      const previous = bySeq.get(seqKey) ?? { q: -1, at: -1 };
      if (event.q <= previous.q) {
        problems.push(`${log.name}: ${event.stream} from ${event.p} seq ${event.q} after ${previous.q} (repeated or out of order)`);
      } else if (event.q > previous.q + 1) {
        const missing = event.q - previous.q - 1;
        if (explained(event.stream, previous.at)) toldMissing += missing;
        else if (!excused(event.stream, event.p, previous.q + 1, event.q - 1))
          problems.push(`${log.name}: ${event.stream} from ${event.p} missed seq ${previous.q + 1}…${event.q - 1} (${missing}) untold`);
      }
      bySeq.set(seqKey, { q: Math.max(event.q, previous.q), at });
    });
    // The tail: what was owed and never came (a loss told does not excuse it: the last messages were sent after it).
    for (const [publisher, rooms] of Object.entries(owed)) {
      for (const [room, count] of Object.entries(rooms)) {
        const stream = streamOf(room);
        const last = bySeq.get(`${stream} ${publisher}`) ?? { q: -1, at: -1 };
        if (last.q >= count - 1) continue;
        const missing = count - 1 - last.q;
        if (!excused(stream, publisher, last.q + 1, count - 1))
          problems.push(`${log.name}: ${stream} from ${publisher} missed seq ${last.q + 1}…${count - 1} (${missing}) at the end, untold`);
      }
    }
  }
  return { problems, told, toldMissing, delivered, unpublished: unpublishedOf.size, resumes };
}

/** The verdict in a line, for the test's output. */
export function summary(verdict: Verdict): string {
  const { delivered, told, toldMissing, resumes, problems, unpublished } = verdict;
  return (
    `${delivered} delivered; ${unpublished} never published; resumes ${resumes.recovered} recovered, ${resumes.notRecovered} not; ` +
    `${told} loss notices covering ${toldMissing} messages; ${problems.length} problems`
  );
}
