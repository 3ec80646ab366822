/**
 * The supervisor and its children as the runtime runs them, decided once by
 * whether the runtime is inspected: XState Actors — the supervisor, its
 * session actors and every connection's, its children — so the inspector
 * sees them and every event; otherwise the same machines compiled
 * (src/interpreter/), the same states and actions without an
 * Actor's snapshots, mailbox and inspection events, which were most of a
 * connection's cost to open, register, join and close (`churn`). Either way
 * the machines decide: one event at a time, in arrival order.
 */
import { createActor, type AnyActorRef, type InspectionEvent } from 'xstate';
import {
  CONNECTION_ACTOR_ID,
  type ConnectionContext,
  type ConnectionEvent,
  type ConnectionInput,
  type ConnectionMachine,
  type ConnectionOutput,
} from '../../machines/connection.machine.js';
import {
  SESSION_ACTOR_ID,
  sessionMachine,
  type SessionEvent,
  type SessionInput,
  type SessionOutput,
} from '../../machines/session.machine.js';
import type { SupervisorContext, SupervisorEvent, SupervisorInput } from '../../machines/supervisor.machine.js';
import type { SupervisorMachine } from '../connection/actors.js';
import type { ConnectionLifecycle } from '../connection/connection.js';
import { doneActorEvent, errorActorEvent } from '../interpreter/actor-events.js';
import { indexScheduledEvents } from '../interpreter/actor-scheduler.js';
import type { CompiledMachineHooks, MachineInstance } from '../interpreter/instance.js';
import { CompiledMachine } from '../interpreter/machine.js';
import type { Timers } from '../util/timers.js';
import type { Clock, RuntimeOptions } from './options.js';
import type { SessionKeeper } from './recovery/recovery.js';
import { createSessionActor, sessionKey } from './recovery/sessions.js';
import type { SupervisorSnapshot, SupervisorView } from './supervisor-view.js';

export interface SupervisorRunner {
  send(event: SupervisorEvent): void;
  /** False once it has stopped: shut down with no connection left, or failed. */
  readonly active: boolean;
  readonly context: SupervisorContext;
  readonly view: SupervisorView;
  /**
   * Starts a connection's lifecycle, the supervisor's child: its ref for the supervisor's `sendTo`, and
   * whether it ended already (its entry actions failed).
   */
  connection(input: ConnectionInput): { readonly lifecycle: ConnectionLifecycle; readonly ref: AnyActorRef; readonly ended: boolean };
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
  /** The connection machine, provided with the runtime's actions. */
  readonly connectionLogic: ConnectionMachine;
  /** A bug in berth: nothing can be registered or broadcast from here on. */
  failed(error: unknown): void;
  /**
   * A callback an event carried (`respond`, `taken`, `delivered`), or the inspection observer, threw:
   * reported, and the supervisor goes on with its next event.
   */
  callbackFailed(error: unknown, what: string): void;
  /** A connection's lifecycle failed (an action threw): the runtime closes its socket and tells the supervisor. */
  connectionFailed(id: string, error: unknown): void;
}

export function startSupervisor(logic: SupervisorMachine, options: SupervisorOptions): SupervisorRunner {
  const runner = options.inspect === undefined ? compiledSupervisor(logic, options) : actorSupervisor(logic, options);
  const send = runner.send;
  // What an event carries runs inside the supervisor's transition: a throw there must cost that
  // callback only, never the supervisor, which every connection of the runtime depends on.
  runner.send = (event) => send(guardCallbacks(event, options.callbackFailed));
  return runner;
}

const CALLBACKS = ['respond', 'taken', 'delivered'] as const;

/** Wraps, in place, every callback an event carries so that a throw is reported instead of raised. */
function guardCallbacks(event: SupervisorEvent, failed: (error: unknown, what: string) => void): SupervisorEvent {
  const fields = event as unknown as Record<string, unknown>;
  for (const name of CALLBACKS) {
    const callback = fields[name];
    if (typeof callback !== 'function') continue;
    fields[name] = (...args: unknown[]) => {
      try {
        return (callback as (...args: unknown[]) => unknown)(...args);
      } catch (error) {
        failed(error, `the ${event.type} event's ${name} callback`);
        return undefined;
      }
    };
  }
  return event;
}

/** The application's inspection observer, guarded: one that throws must not fail the actor it watches. */
function guardInspect(inspect: NonNullable<RuntimeOptions<unknown>['inspect']>, failed: (error: unknown, what: string) => void) {
  const next = typeof inspect === 'function' ? inspect : inspect.next?.bind(inspect);
  return (event: InspectionEvent) => {
    try {
      next?.(event);
    } catch (error) {
      failed(error, 'the inspect observer');
    }
  };
}

/**
 * The supervisor's sessions, as recovery keeps and takes them: by the hash of their token, so that
 * no token is in an actor's context, a snapshot, or what the inspector is shown (a token is a credential).
 */
export function supervisorSessions(supervisor: SupervisorRunner): SessionKeeper {
  return {
    keep: (kept_, windowMs, kept) => {
      const record = { ...kept_, token: sessionKey(kept_.token) };
      // Session actors are the supervisor's children, so the inspector shows them beside the connections.
      const session = supervisor.session({ token: record.token, windowMs });
      supervisor.send({
        type: 'session.detach',
        record,
        ref: session.ref,
        respond: (ok) => {
          if (ok) session.start();
          kept(ok);
        },
      });
    },
    take: (token, user, taken) =>
      supervisor.send({ type: 'session.take', token: sessionKey(token), user, taken: (record) => taken(record) }),
    holds: (stream) => supervisor.context.sessions.interested(stream),
    get holdsAny() {
      return supervisor.context.sessions.holdsAny;
    },
  };
}

function actorSupervisor(
  logic: SupervisorMachine,
  { input, inspect, clock, connectionLogic, failed, callbackFailed, connectionFailed }: SupervisorOptions,
): SupervisorRunner {
  // XState spreads options over its defaults, so an `undefined` clock would replace the real one.
  const actor = createActor(logic, {
    input,
    id: 'supervisor',
    systemId: 'supervisor',
    inspect: guardInspect(inspect!, callbackFailed),
    ...(clock && { clock }),
  });
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
    connection: (connectionInput) => {
      const child = createActor(connectionLogic, {
        parent: actor,
        // No systemId: registering one costs a Map and a WeakMap entry per connection, and the
        // connection id is in the actor's context for whoever inspects it.
        id: CONNECTION_ACTOR_ID,
        input: connectionInput,
      });
      child.subscribe({ error: (error) => connectionFailed(connectionInput.id, error) });
      child.start();
      return { lifecycle: child, ref: child, ended: child.getSnapshot().status !== 'active' };
    },
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

/** Compiled once per process: the session machine is the same for every runtime. */
let compiledSession: CompiledMachine<object, SessionEvent, SessionInput, SessionOutput> | undefined;
let compiledRuns = 0;

function compiledSupervisor(
  logic: SupervisorMachine,
  { input, timers, connectionLogic, failed, connectionFailed }: SupervisorOptions,
): SupervisorRunner {
  type Instance = MachineInstance<SupervisorContext, SupervisorEvent>;
  const listeners = new Set<(snapshot: SupervisorSnapshot) => void>();
  const stopped = new Set<() => void>();
  // Every event passes through here (each broadcast is one): the snapshot is made only when it changed
  // and someone looks, not per event.
  let status: SupervisorSnapshot['status'] = 'active';
  let value: SupervisorSnapshot['value'] = 'running';
  let snapshot: SupervisorSnapshot | undefined;
  const read = (): SupervisorSnapshot => {
    if (snapshot === undefined || snapshot.status !== status || snapshot.value !== value) snapshot = { status, value };
    return snapshot;
  };
  const end = (ended: 'done' | 'error') => {
    status = ended;
    for (const listener of stopped) listener();
    stopped.clear();
    listeners.clear();
  };
  const instance: Instance = new CompiledMachine<SupervisorContext, SupervisorEvent, SupervisorInput, undefined>(logic).start(
    input,
    timers,
    {
      // Its final state comes through here too, before `done`.
      processed: (state) => {
        value = state as SupervisorSnapshot['value'];
        for (const listener of listeners) listener(read());
      },
      done: () => end('done'),
      failed: (error) => {
        end('error');
        failed(error);
      },
    },
  );
  const compiledConnection = new CompiledMachine<ConnectionContext, ConnectionEvent, ConnectionInput, ConnectionOutput>(connectionLogic);
  const connectionHooks: CompiledMachineHooks<ConnectionContext, ConnectionOutput> = {
    done: (output) => instance.send(doneActorEvent(CONNECTION_ACTOR_ID, output)),
    failed: (error, context) => connectionFailed(context.id, error),
  };
  const view: SupervisorView = Object.freeze({
    id: 'supervisor',
    // No inspection events are sent when nobody inspects: this id only tells runtimes apart.
    sessionId: `compiled:${compiledRuns++}`,
    getSnapshot: read,
    subscribe: (listener: (snapshot: SupervisorSnapshot) => void, complete?: () => void) => {
      if (status === 'active') {
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
      return status === 'active';
    },
    get context() {
      return instance.context;
    },
    view,
    connection: (connectionInput) => {
      const child = compiledConnection.start(connectionInput, timers, connectionHooks);
      // The instance is its own ref: the supervisor's `sendTo` reaches it through its `_send`.
      return { lifecycle: child, ref: child as unknown as AnyActorRef, ended: child.ended };
    },
    onStopped(listener) {
      if (status !== 'active') listener();
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
            done: (output) => instance.send(doneActorEvent(SESSION_ACTOR_ID, output)),
            // A session machine has nothing that can fail; as an Actor's, its error is the supervisor's to ignore.
            failed: (error) => instance.send(errorActorEvent(SESSION_ACTOR_ID, error)),
          });
        },
      };
    },
  };
}
