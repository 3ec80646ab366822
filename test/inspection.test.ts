import type { AnyActorRef, InspectionEvent } from 'xstate';
import { describe, expect, it } from 'vitest';
import type { Connection } from '../src/index.js';
import { connect, eventually } from './helpers/client.js';
import { startRuntime } from './helpers/runtime.js';

describe('inspection', () => {
  it('one observer sees the supervisor and each connection actor, as its child, from open to closed', async () => {
    const events: InspectionEvent[] = [];
    const { runtime, url } = await startRuntime({ inspect: (event) => events.push(event) });
    const opened = new Promise<Connection>((resolve) => runtime.on('connection', resolve));
    const client = await connect(url);
    const connection = await opened;
    client.ws.close(4000, 'bye');
    await eventually(() => connection.state === 'closed', 'the close');

    const actors = events.filter((event) => event.type === '@xstate.actor').map((event) => event.actorRef as AnyActorRef);
    const supervisor = actors.find((actor) => actor.id === 'supervisor');
    const child = actors.find((actor) => actor.getSnapshot().context?.id === connection.id);
    expect(supervisor?.sessionId).toBe(runtime.supervisor.sessionId);
    expect(child?._parent).toBe(supervisor);
    // Every event shares one root: the supervisor's system.
    expect(new Set(events.map((event) => event.rootId))).toEqual(new Set([runtime.supervisor.sessionId]));

    const states = events
      .filter((event) => event.type === '@xstate.snapshot' && event.actorRef === child)
      .map((event) => {
        const snapshot = (event as unknown as { snapshot: { value: unknown; status: string } }).snapshot;
        return typeof snapshot.value === 'string' ? snapshot.value : Object.keys(snapshot.value as object)[0];
      });
    expect(states[0]).toBe('open');
    expect(states.at(-1)).toBe('closed');
    const microsteps = events
      .filter((event) => event.type === '@xstate.microstep' && event.actorRef === child)
      .map((event) => JSON.stringify((event as unknown as { snapshot: { value: unknown } }).snapshot.value));
    // A client's close passes through disconnecting on its way to closed.
    expect(microsteps).toContain('{"disconnecting":"socketGone"}');

    const supervisorEvents = events
      .filter((event) => event.type === '@xstate.event' && event.actorRef === supervisor)
      .map((event) => (event as unknown as { event: { type: string } }).event.type);
    expect(supervisorEvents).toEqual(
      // The client closed first, so its done event is what takes it out of the supervisor's registry.
      expect.arrayContaining(['connection.register', 'xstate.done.actor.connection']),
    );
  });
});
