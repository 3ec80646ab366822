/**
 * A fixed-size log-scale latency histogram: recording is one log and one
 * increment (no allocation per message, millions of samples per run), and
 * histograms of several client processes merge by adding counts. Buckets are
 * 2 % wide, which is finer than run-to-run noise of a p99.
 */

const PER_E = 50; // buckets per factor e of latency: e^(1/50) ≈ 1.02
const BUCKETS = 1024; // covers up to e^(1024/50) µs ≈ 780 s

export class LatencyHistogram {
  readonly counts = new Float64Array(BUCKETS);
  total = 0;

  /** Records a latency in milliseconds (negative clock skew counts as 0). */
  record(ms: number): void {
    const us = ms > 0 ? ms * 1000 : 0;
    const bucket = Math.floor(Math.log1p(us) * PER_E);
    this.counts[bucket < BUCKETS ? bucket : BUCKETS - 1]!++;
    this.total++;
  }

  /** Non-empty buckets as `[bucket, count]`, small enough to send over IPC. */
  toSparse(): [number, number][] {
    const pairs: [number, number][] = [];
    for (let i = 0; i < BUCKETS; i++) if (this.counts[i]! > 0) pairs.push([i, this.counts[i]!]);
    return pairs;
  }

  add(sparse: readonly (readonly [number, number])[]): void {
    for (const [bucket, count] of sparse) {
      this.counts[bucket]! += count;
      this.total += count;
    }
  }

  /** The latency (ms) below which `fraction` of the samples lie: the bucket's geometric middle. */
  quantile(fraction: number): number | null {
    if (this.total === 0) return null;
    const rank = fraction * this.total;
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.expm1((i + 0.5) / PER_E) / 1000;
    }
    return Math.expm1(BUCKETS / PER_E) / 1000;
  }
}
