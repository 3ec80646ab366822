/**
 * The supervisor as the runtime runs it: an XState Actor when the runtime is
 * inspected, so the inspector sees it, its session actors and every event;
 * otherwise the supervisor machine compiled (src/util/compiled-machine.ts),
 * the same states and actions without an Actor's snapshots, mailbox and
 * inspection events — which were most of a connection's cost to register,
 * join and leave (`churn`). Either way the machine decides: one event at a
 * time, in arrival order.
 */
import { createActor, type Actor, type AnyActorRef } from 'xstate';
import {
  SESSION_ACTOR_ID,
  sessionMachine,
  type SessionEvent,
  type SessionInput,
  type SessionOutput,
} from '../../machines/session.machine.js';
import type { SupervisorContext, SupervisorEvent, SupervisorInput } from '../../machines/supervisor.machine.js';
import { indexScheduledEvents } from '../connection/actor-scheduler.js';
import type { SupervisorMachine } from '../connection/actors.js';
import { CompiledMachine, type MachineInstance } from '../util/compiled-machine.js';
import type { Timers } from '../util/timers.js';
import type { Clock, RuntimeOptions } from './options.js';
import { createSessionActor } from './sessions.js';
import type { SupervisorSnapshot, SupervisorView } from './supervisor-view.js';

export interface SupervisorRunner {
  send(event: SupervisorEvent): void;
  /** False once it has stopped: shut down with no connection left, or failed. */
  readonly active: boolean;
  readonly context: SupervisorContext;
  readonly view: SupervisorView;
  /** The parent of inspected connection actors; undefined when compiled (connections are compiled too). */
  readonly actor: Actor<SupervisorMachine> | undefined;
  /** Calls `listener` once it has stopped (at once if it has). */
  onStopped(listener: () => void): void;
  /** A session actor for a dropped connection, not started: the supervisor's child, on the runtime's clock. */
  session(input: SessionInput): { readonly ref: AnyActorRef; start(): void };
}

export interface SupervisorOptions {
  readonly input: SupervisorInput;
  /** Set: an XState Actor, inspected. */
  readonly inspect: RuntimeOptions<unknown>['inspect'];
  readonly clock: Clock | undefined;
  readonly timers: Timers;
  /** A bug in berth: nothing can be registered or broadcast from here on. */
  failed(error: unknown): void;
}

export function startSupervisor(logic: SupervisorMachine, options: SupervisorOptions): SupervisorRunner {
  return options.inspect === undefined ? compiledSupervisor(logic, options) : actorSupervisor(logic, options);
}

function actorSupervisor(logic: SupervisorMachine, { input, inspect, clock, failed }: SupervisorOptions): SupervisorRunner {
  // XState spreads options over its defaults, so an `undefined` clock would replace the real one.
  const actor = createActor(logic, { input, id: 'supervisor', systemId: 'supervisor', inspect, ...(clock && { clock }) });
  indexScheduledEvents(actor.system);
  actor.subscribe({ error: failed });
  actor.start();
  const read = (): SupervisorSnapshot => {
    const { status, value } = actor.getSnapshot();
    return { status, value: value as SupervisorSnapshot['value'] };
  };
  const view: SupervisorView = Object.freeze({
    id: actor.id,
    sessionId: actor.sessionId,
    getSnapshot: read,
    subscribe: (listener: (snapshot: SupervisorSnapshot) => void, complete?: () => void) =>
      actor.subscribe({ next: () => listener(read()), error: () => {}, ...(complete && { complete }) }),
  });
  return {
    send: (event) => actor.send(event),
    get active() {
      return actor.getSnapshot().status === 'active';
    },
    get context() {
      return actor.getSnapshot().context;
    },
    view,
    actor,
    onStopped(listener) {
      if (actor.getSnapshot().status !== 'active') listener();
      else actor.subscribe({ complete: listener, error: listener });
    },
    session: ({ token, windowMs }) => {
      const session = createSessionActor(actor, token, windowMs);
      return { ref: session, start: () => session.start() };
    },
  };
}

/** Compiled once per process: the machines are the same for every runtime. */
let compiledSession: CompiledMachine<object, SessionEvent, SessionInput, SessionOutput> | undefined;
let compiledRuns = 0;

function compiledSupervisor(logic: SupervisorMachine, { input, timers, failed }: SupervisorOptions): SupervisorRunner {
  type Instance = MachineInstance<SupervisorContext, SupervisorEvent>;
  const listeners = new Set<(snapshot: SupervisorSnapshot) => void>();
  const stopped = new Set<() => void>();
  let snapshot: SupervisorSnapshot = { status: 'active', value: 'running' };
  const end = (status: 'done' | 'error') => {
    snapshot = { status, value: snapshot.value };
    for (const listener of stopped) listener();
    stopped.clear();
    listeners.clear();
  };
  const instance: Instance = new CompiledMachine<SupervisorContext, SupervisorEvent, SupervisorInput, undefined>(logic).start(
    input,
    timers,
    {
      processed: (state) => {
        snapshot = { status: 'active', value: state as SupervisorSnapshot['value'] };
        for (const listener of listeners) listener(snapshot);
      },
      done: () => end('done'),
      failed: (error) => {
        end('error');
        failed(error);
      },
    },
  );
  // The supervisor's own final state is reported through `processed` before `done`.
  const view: SupervisorView = Object.freeze({
    id: 'supervisor',
    // No inspection events are sent when nobody inspects: this id only tells runtimes apart.
    sessionId: `compiled:${compiledRuns++}`,
    getSnapshot: () => snapshot,
    subscribe: (listener: (snapshot: SupervisorSnapshot) => void, complete?: () => void) => {
      if (snapshot.status === 'active') {
        listeners.add(listener);
        if (complete !== undefined) stopped.add(complete);
      }
      return {
        unsubscribe: () => {
          listeners.delete(listener);
          if (complete !== undefined) stopped.delete(complete);
        },
      };
    },
  });
  return {
    send: (event) => instance.send(event),
    get active() {
      return snapshot.status === 'active';
    },
    get context() {
      return instance.context;
    },
    view,
    actor: undefined,
    onStopped(listener) {
      if (snapshot.status !== 'active') listener();
      else stopped.add(listener);
    },
    session: (sessionInput) => {
      compiledSession ??= new CompiledMachine(sessionMachine);
      let session: MachineInstance<object, SessionEvent> | undefined;
      let stop = false;
      const ref = {
        _send: (event: SessionEvent) => session?.send(event),
        stop: () => {
          stop = true;
          session?.stop();
        },
      };
      return {
        ref: ref as unknown as AnyActorRef,
        start: () => {
          if (stop || session !== undefined) return;
          session = compiledSession!.start(sessionInput, timers, {
            done: (output) => instance.send({ type: `xstate.done.actor.${SESSION_ACTOR_ID}`, output, actorId: SESSION_ACTOR_ID }),
            // A session machine has nothing that can fail; as an Actor's, its error is the supervisor's to ignore.
            failed: (error) => instance.send({ type: `xstate.error.actor.${SESSION_ACTOR_ID}`, error, actorId: SESSION_ACTOR_ID }),
          });
        },
      };
    },
  };
}
