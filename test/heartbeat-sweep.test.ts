/**
 * The heartbeat sweep on a clock of its own, where pinging takes time: rounds
 * keep to the interval however long a round takes, and a pong's timeout still
 * counts from when its ping left.
 */
import { describe, expect, it } from 'vitest';
import { HeartbeatSweep, type HeartbeatMember } from '../src/connection/heartbeat.js';

/** A clock whose time moves only when told: timers fire in order as it passes them. */
class ManualClock {
  now = 0;
  #timers = new Map<number, { at: number; fn: () => void }>();
  #next = 0;
  setTimeout = (fn: () => void, ms: number): unknown => {
    const id = ++this.#next;
    this.#timers.set(id, { at: this.now + ms, fn });
    return id;
  };
  clearTimeout = (id: unknown): void => void this.#timers.delete(id as number);
  /** Runs every timer due up to `until`, each at its own time. */
  advanceTo(until: number): void {
    for (;;) {
      const due = [...this.#timers].filter(([, t]) => t.at <= until).sort((a, b) => a[1].at - b[1].at)[0];
      if (due === undefined) break;
      this.#timers.delete(due[0]);
      this.now = Math.max(this.now, due[1].at);
      due[1].fn();
    }
    this.now = Math.max(this.now, until);
  }
}

/** Counters nobody reads: these tests watch the members. */
const counters = { pinged: () => {}, ponged: () => {}, missed: () => {}, failed: () => {} };

function members(clock: ManualClock, count: number, msPerPing: number) {
  const rounds: number[] = [];
  const missed: number[] = [];
  const list = Array.from({ length: count }, (_, i) => {
    const member: HeartbeatMember = {
      pingRound: 0,
      pingSentAt: 0,
      roundTripMs: undefined,
      ping: () => {
        if (i === 0) rounds.push(clock.now);
        clock.now += msPerPing; // pinging takes time
      },
      missed: () => missed.push(clock.now),
    };
    return member;
  });
  return { list, rounds, missed };
}

describe('heartbeat sweep timing', () => {
  it('keeps rounds on the interval when a round takes a tenth of it', () => {
    const clock = new ManualClock();
    const sweep = new HeartbeatSweep({ intervalMs: 1000, timeoutMs: 900 }, clock, () => clock.now, counters);
    const { list, rounds } = members(clock, 100, 1);
    for (const member of list) sweep.add(member);
    for (let t = 1000; t <= 5000; t += 1000) {
      clock.advanceTo(t);
      for (const member of list) sweep.pong(member); // everyone answers at once
    }
    // Without compensation the rounds would come at 1000, 2100, 3200 …
    expect(rounds).toEqual([1000, 2000, 3000, 4000, 5000]);
    sweep.stop();
  });

  it('never shortens a pong’s timeout: it counts from the last ping of the round', () => {
    const clock = new ManualClock();
    const sweep = new HeartbeatSweep({ intervalMs: 1000, timeoutMs: 1000 }, clock, () => clock.now, counters);
    const { list, missed } = members(clock, 200, 1);
    for (const member of list) sweep.add(member);
    clock.advanceTo(1000); // the round pings from 1000 to 1200
    clock.advanceTo(2199);
    expect(missed).toEqual([]);
    clock.advanceTo(2200);
    expect(missed).toHaveLength(200);
    expect(Math.min(...missed)).toBeGreaterThanOrEqual(2200);
    sweep.stop();
  });
});
