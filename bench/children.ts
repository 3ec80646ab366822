/**
 * Child processes of the orchestrator and request/reply over their IPC
 * channels, every request with a deadline. Every child is killed when the
 * orchestrator exits, however it exits; children also exit by themselves
 * when the IPC channel closes (see server-process.ts, client-process.ts).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const live = new Set<ChildProcess>();

/** Kills every child still running (SIGKILL: nothing of theirs needs to be kept). */
export function killAllChildren(): void {
  for (const child of live) child.kill('SIGKILL');
  live.clear();
}
process.on('exit', killAllChildren);

/** Makes a process the orchestrator started by other means die with it too. */
export function adopt(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
}

/** A phase of a run that failed or timed out; its message says which and why. */
export class PhaseError extends Error {
  override name = 'PhaseError';
}

type Without<T> = T extends unknown ? Omit<T, 'id'> : never;
interface Pending {
  phase: string;
  resolve(reply: unknown): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

export class Child<Command extends { id: number; type: string }, Reply extends { id: number; type: string }> {
  readonly label: string;
  readonly #process: ChildProcess;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #exit: string | undefined;
  readonly #exited: Promise<void>;

  private constructor(label: string, child: ChildProcess) {
    this.label = label;
    this.#process = child;
    live.add(child);
    this.#exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        live.delete(child);
        this.#exit = `${label} exited (${signal ?? `code ${code}`})`;
        for (const pending of this.#pending.values()) {
          clearTimeout(pending.timer);
          pending.reject(new PhaseError(`${pending.phase}: ${this.#exit}`));
        }
        this.#pending.clear();
        resolve();
      });
    });
    child.on('message', (reply: Reply) => {
      const pending = this.#pending.get(reply.id);
      if (pending === undefined) return;
      this.#pending.delete(reply.id);
      clearTimeout(pending.timer);
      if (reply.type === 'error') pending.reject(new PhaseError(`${label}: ${(reply as unknown as { message: string }).message}`));
      else pending.resolve(reply);
    });
  }

  /**
   * Forks `file` (relative to bench/, named `.ts`) and waits for its `ready`
   * message. Compiled (`npm run bench`), the child runs as plain JavaScript;
   * from source, under tsx. tsx keeps function names by defining `name` on
   * every closure, which slows and bloats whatever it compiles, so numbers
   * come from the compiled run only.
   */
  static async start<C extends { id: number; type: string }, R extends { id: number; type: string }>(
    label: string,
    file: string,
    args: readonly string[],
    options: { exposeGc?: boolean; timeoutMs: number; env?: Record<string, string> },
  ): Promise<{ child: Child<C, R>; ready: R }> {
    const compiled = import.meta.url.endsWith('.js');
    const path = fileURLToPath(new URL(compiled ? file.replace(/\.ts$/, '.js') : file, import.meta.url));
    const execArgv = [...(compiled ? [] : ['--import', 'tsx']), ...(options.exposeGc ? ['--expose-gc'] : [])];
    const env = options.env === undefined ? process.env : { ...process.env, ...options.env };
    const forked = fork(path, [...args], { execArgv, env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const child = new Child<C, R>(label, forked);
    try {
      return { child, ready: await child.#await<R>(0, options.timeoutMs, 'start') };
    } catch (error) {
      await child.kill();
      throw error;
    }
  }

  /** Sends a command and resolves with the reply of the same type, or fails with a PhaseError. */
  request<K extends Command['type']>(
    command: Extract<Without<Command>, { type: K }>,
    timeoutMs: number,
    phase: string,
  ): Promise<Extract<Reply, { type: K }>> {
    const id = this.#nextId++;
    const reply = this.#await<Extract<Reply, { type: K }>>(id, timeoutMs, phase);
    if (this.#exit === undefined) this.#process.send({ ...command, id });
    return reply;
  }

  #await<T>(id: number, timeoutMs: number, phase: string): Promise<T> {
    if (this.#exit !== undefined) return Promise.reject(new PhaseError(`${phase}: ${this.#exit}`));
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new PhaseError(`${this.label}: ${phase} timed out after ${(timeoutMs / 1000).toFixed(0)} s`));
      }, timeoutMs);
      this.#pending.set(id, { phase, resolve: resolve as (reply: unknown) => void, reject, timer });
    });
  }

  /** Kills the process and waits until it is gone. */
  async kill(): Promise<void> {
    if (this.#exit === undefined) this.#process.kill('SIGKILL');
    await this.#exited;
  }
}
