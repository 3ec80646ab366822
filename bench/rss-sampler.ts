/**
 * Peak-RSS sampling on a worker thread. Sampling on the server's own event
 * loop would miss the peak: while a system writes a 1 MB message to 10 000
 * sockets, or libuv drains their queues, the loop does not get to its timers
 * for hundreds of milliseconds. A worker reads the process-wide RSS every
 * millisecond regardless, and hands the peak over through shared memory, so
 * even a blocked main thread can read it. The worker is started with the
 * server, before any baseline reading; it blocks in `Atomics.wait` when not
 * sampling, and costs ~1–2 % of a core while it samples.
 */
import { Worker } from 'node:worker_threads';

// Plain JavaScript (eval) so the worker needs no TypeScript loader.
const WORKER = `
const { workerData } = require('node:worker_threads');
const control = new Int32Array(workerData.control);
const out = new Float64Array(workerData.out);
for (;;) {
  Atomics.wait(control, 0, 0);
  while (Atomics.load(control, 0) === 1) {
    const rss = process.memoryUsage.rss();
    if (rss > out[0]) out[0] = rss;
    out[1]++;
    Atomics.wait(control, 0, 1, 1);
  }
}
`;

export class RssSampler {
  /** [0]: 0 idle, 1 sampling. */
  readonly #control = new Int32Array(new SharedArrayBuffer(4));
  /** [0]: peak RSS, [1]: samples taken. */
  readonly #out = new Float64Array(new SharedArrayBuffer(16));
  readonly #worker: Worker;

  constructor() {
    this.#worker = new Worker(WORKER, { eval: true, workerData: { control: this.#control.buffer, out: this.#out.buffer } });
    this.#worker.unref();
  }

  /** Starts sampling; the peak starts at `baseline`. */
  start(baseline: number): void {
    this.#out[0] = baseline;
    this.#out[1] = 0;
    Atomics.store(this.#control, 0, 1);
    Atomics.notify(this.#control, 0);
  }

  /** Stops sampling and returns the peak and the number of samples. */
  stop(): { peak: number; samples: number } {
    Atomics.store(this.#control, 0, 0);
    return { peak: this.#out[0]!, samples: this.#out[1]! };
  }
}
