/**
 * The heartbeat of every connection of a runtime: one sweep, not a timer per
 * connection. Every `intervalMs` it pings each monitored connection that has
 * no ping out; `timeoutMs` after a round of pings it tells each connection of
 * that round that has not answered that its pong was missed, and the
 * connection's machine ends it (cause `heartbeat`). Pongs are handled here, in
 * plain code: the machine hears only of a miss.
 *
 * Driving pings through each connection's machine cost two transitions, two
 * delays scheduled and cancelled in XState's scheduler and two snapshots per
 * cycle, about three times the CPU of `ws`'s own recommended heartbeat (one
 * `setInterval` over every client); this is that recommendation, with a
 * timeout of its own.
 */
import type { HeartbeatTiming } from '../../machines/connection.machine.js';
import type { Timers } from '../util/timers.js';

/** A connection as the sweep sees it. */
export interface HeartbeatMember {
  /** The round of the ping that awaits its pong; 0 while none is out. */
  pingRound: number;
  /** When that ping left, on the runtime's clock (for the round trip). */
  pingSentAt: number;
  /** The last round trip, in milliseconds; undefined before the first pong. */
  roundTripMs: number | undefined;
  ping(): void;
  /** Its pong did not come within the timeout. */
  missed(): void;
}

export interface HeartbeatCounters<M> {
  pinged(count: number): void;
  ponged(): void;
  missed(count: number): void;
  /** A member's ping threw: that member is out of the sweep, and the others are pinged all the same. */
  failed(member: M, error: unknown): void;
}

/** What a connection's heartbeat is doing: waiting for its next ping, waiting for a pong, or not monitored. */
export type HeartbeatPhase = 'waiting' | 'awaiting-pong' | 'off';

export class HeartbeatSweep<M extends HeartbeatMember> {
  readonly #timing: HeartbeatTiming;
  /** The runtime's clock (XState's `SimulatedClock` in tests). */
  readonly #clock: Timers;
  readonly #now: () => number;
  readonly #counters: HeartbeatCounters<M>;
  readonly #members = new Set<M>();
  /** Rounds of pings whose timeout has not passed yet, oldest first; `due` on the clock's `now`. */
  readonly #checks: Array<{ readonly round: number; readonly due: number; readonly pinged: M[] }> = [];
  /**
   * When the next round is due, on the clock's `now`. Rounds keep to the interval whatever a round
   * takes (10 000 pings) or however late the timer fires; a pong's timeout counts from when its ping
   * actually left, so it is never shortened.
   */
  #nextRoundAt = 0;
  #round = 0;
  #timer: unknown;

  constructor(timing: HeartbeatTiming, clock: Timers, now: () => number, counters: HeartbeatCounters<M>) {
    this.#timing = timing;
    this.#clock = clock;
    this.#now = now;
    this.#counters = counters;
  }

  get size(): number {
    return this.#members.size;
  }

  add(member: M): void {
    this.#members.add(member);
    if (this.#timer === undefined) {
      // The first round is one interval after the first member came.
      this.#nextRoundAt = this.#now() + this.#timing.intervalMs;
      this.#schedule();
    }
  }

  /** The member stopped being open: no more pings, no miss reported. */
  remove(member: M): void {
    if (!this.#members.delete(member)) return;
    member.pingRound = 0;
    if (this.#members.size === 0) this.stop();
  }

  pong(member: M): void {
    this.#counters.ponged();
    if (member.pingRound === 0) return;
    member.roundTripMs = this.#now() - member.pingSentAt;
    member.pingRound = 0;
  }

  phaseOf(member: M): HeartbeatPhase {
    if (!this.#members.has(member)) return 'off';
    return member.pingRound === 0 ? 'waiting' : 'awaiting-pong';
  }

  /** Stops the timer; rounds already out are forgotten. */
  stop(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#checks.length = 0;
  }

  #schedule(): void {
    const next = this.#checks.length > 0 ? Math.min(this.#checks[0]!.due, this.#nextRoundAt) : this.#nextRoundAt;
    this.#timer = this.#clock.setTimeout(() => this.#wake(), Math.max(0, next - this.#now()));
  }

  #wake(): void {
    this.#timer = undefined;
    const now = this.#now();
    // Misses first: when a round's timeout ends as the next round starts (timeout = interval), a
    // member that did not answer is ended, not pinged again.
    while (this.#checks.length > 0 && this.#checks[0]!.due <= now) {
      const { round, pinged } = this.#checks.shift()!;
      let missed = 0;
      for (const member of pinged) {
        // Still awaiting that very ping, and still monitored (a closed member was removed).
        if (member.pingRound !== round) continue;
        member.pingRound = 0;
        missed++;
        this.#members.delete(member);
        member.missed();
      }
      if (missed > 0) this.#counters.missed(missed);
    }
    // A timer may fire a hair early; a round within a millisecond of its time is on time.
    if (now >= this.#nextRoundAt - 1) {
      const round = ++this.#round;
      const pinged: M[] = [];
      for (const member of this.#members) {
        if (member.pingRound !== 0) continue;
        try {
          member.ping();
        } catch (error) {
          this.#members.delete(member);
          this.#counters.failed(member, error);
          continue;
        }
        member.pingRound = round;
        member.pingSentAt = now;
        pinged.push(member);
      }
      // The timeout counts from when the last of the round's pings left.
      if (pinged.length > 0) {
        this.#checks.push({ round, due: this.#now() + this.#timing.timeoutMs, pinged });
        this.#counters.pinged(pinged.length);
      }
      // On the interval's own beat; a sweep a whole interval behind (a stalled event loop) counts again from now.
      const next = this.#nextRoundAt + this.#timing.intervalMs;
      this.#nextRoundAt = next > now ? next : now + this.#timing.intervalMs;
    }
    if (this.#members.size > 0 || this.#checks.length > 0) this.#schedule();
  }
}
