/**
 * The orders a scenario's `concurrent` steps are tried in: every permutation
 * of each group (written order first), or a seeded sample past a limit, and
 * their text form (`0:1,0;1:0,1`) that replays one.
 */
import type { Step } from './scenario.js';
import { seededRandom } from '../util/random.js';

/** One permutation per concurrent group, in group order. */
export type Order = ReadonlyArray<readonly number[]>;

/** Every `concurrent` step, numbered in document order. */
export function concurrentGroups(steps: readonly Step[], found = new Map<Step, number>()): Map<Step, number> {
  for (const step of steps) {
    if ('concurrent' in step) {
      found.set(step, found.size);
      concurrentGroups(step.concurrent, found);
    }
    if ('repeat' in step) concurrentGroups(step.steps, found);
  }
  return found;
}

/** Every order of n steps, the written one first. */
function permutations(n: number): number[][] {
  if (n <= 1) return [[0].slice(0, n)];
  const all = permutations(n - 1).flatMap((rest) => Array.from({ length: n }, (_, at) => [...rest.slice(0, at), n - 1, ...rest.slice(at)]));
  return all.sort((a, b) => a.join().localeCompare(b.join()));
}

export function ordersToTry(groups: Map<Step, number>, max: number, seed: number): Order[] {
  const choices = [...groups.keys()].map((step) => permutations((step as { concurrent: readonly Step[] }).concurrent.length));
  const total = choices.reduce((product, list) => product * list.length, 1);
  if (total <= max) {
    let all: number[][][] = [[]];
    for (const list of choices) all = all.flatMap((prefix) => list.map((perm) => [...prefix, perm]));
    return all;
  }
  // Seeded: the same seed tries the same orders.
  const random = seededRandom(seed);
  return Array.from({ length: max }, (_, i) => choices.map((list) => (i === 0 ? list[0]! : list[Math.floor(random() * list.length)]!)));
}

export const formatOrder = (order: Order) =>
  order.length === 0 ? '-' : order.map((perm, group) => `${group}:${perm.join(',')}`).join(';');

export function parseOrder(text: string, groups: Map<Step, number>): Order {
  if (text === '-') return [];
  const order = text.split(';').map((part) => part.split(':')[1]!.split(',').map(Number));
  const sizes = [...groups.keys()].map((step) => (step as { concurrent: readonly Step[] }).concurrent.length);
  if (order.length !== sizes.length || order.some((perm, i) => [...perm].sort().join() !== [...Array(sizes[i]).keys()].join())) {
    throw new TypeError(`order ${text} does not fit this scenario's ${sizes.length} concurrent group(s) of ${sizes.join(', ')}`);
  }
  return order;
}
