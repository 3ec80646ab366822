import type { ActorSystem, AnyActorRef } from 'xstate';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- every system's scheduler has this one shape
type AnyActorSystem = ActorSystem<any>;

type Scheduler = AnyActorSystem['scheduler'];

const indexed = new WeakSet<Scheduler>();

/**
 * Makes the actor system's `scheduler.cancelAll(actor)` cost O(that actor's
 * delays) instead of O(every delay in the system).
 *
 * XState 5.33 cancels an actor's delayed events when it stops by scanning
 * every scheduled event of the whole system. With 20 000 connections each
 * holding a heartbeat delay, every closing connection scanned 20 000 entries:
 * 2.7 ms per close, so closing them all took about a minute (measured by
 * `bench/register-cost.ts`). This wrapper keeps the ids each actor scheduled
 * and cancels exactly those through the original scheduler, which still does
 * all the work; it changes no behaviour.
 */
export function indexScheduledEvents(system: AnyActorSystem): void {
  const inner = system.scheduler;
  if (indexed.has(inner)) return;
  const bySource = new WeakMap<AnyActorRef, Set<string>>();
  const scheduler: Scheduler = {
    schedule(source, target, event, delay, id = Math.random().toString(36).slice(2)) {
      inner.schedule(source, target, event, delay, id);
      let ids = bySource.get(source);
      if (ids === undefined) {
        ids = new Set();
        bySource.set(source, ids);
      }
      // Ids of delays that already fired stay here until the next cancel;
      // they are per state (`xstate.after.<delay>.<state>`), so few per actor.
      ids.add(id);
    },
    cancel(source, id) {
      inner.cancel(source, id);
      bySource.get(source)?.delete(id);
    },
    cancelAll(source) {
      const ids = bySource.get(source);
      if (ids === undefined) return;
      bySource.delete(source);
      for (const id of ids) inner.cancel(source, id);
    },
  };
  indexed.add(scheduler);
  system.scheduler = scheduler;
}
