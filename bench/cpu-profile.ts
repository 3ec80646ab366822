/**
 * The in-process V8 CPU profiler of a bench child (`--cpu-prof DIR`): the
 * children end by SIGKILL or with their IPC channel, so Node's own
 * `--cpu-prof` would write nothing.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector';
import { dirname } from 'node:path';

let session: Session | undefined;

const post = (to: Session, method: string) =>
  new Promise<unknown>((resolve, reject) => to.post(method, (error, result) => (error ? reject(error) : resolve(result))));

/** True while a profile is being taken. */
export function profiling(): boolean {
  return session !== undefined;
}

export async function startProfile(): Promise<void> {
  if (session !== undefined) throw new Error('a profile is already being taken');
  session = new Session();
  session.connect();
  await post(session, 'Profiler.enable');
  await post(session, 'Profiler.start');
}

/** Stops the profile and writes it to `path` (a `.cpuprofile`, for Chrome's DevTools or speedscope). */
export async function stopProfile(path: string): Promise<void> {
  if (session === undefined) throw new Error('no profile started');
  const { profile } = (await post(session, 'Profiler.stop')) as { profile: unknown };
  session.disconnect();
  session = undefined;
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, JSON.stringify(profile));
}
