/**
 * Subscriptions read alike on the server and the client: `on` returns the
 * unsubscribe, and a name that is no event (a typo, or a name from before a
 * rename) throws where it is written instead of never firing.
 */
import { describe, expect, it } from 'vitest';
import { createClient } from '../../src/client.js';
import { connect } from '../helpers/client.js';
import { startRuntime } from '../helpers/runtime.js';

describe('runtime.on', () => {
  it('returns the unsubscribe: an unsubscribed handler is not called, the others are', async () => {
    const { runtime, url } = await startRuntime();
    const first: string[] = [];
    const unsubscribe = runtime.on('connection', (connection) => void first.push(connection.id));
    const second = new Promise<string>((resolve) => runtime.on('connection', (connection) => resolve(connection.id)));
    expect(unsubscribe).toBeTypeOf('function');
    unsubscribe();
    unsubscribe();
    const client = await connect(url);
    // Both handlers would have run in the same emit: once the second ran, the first had its turn.
    expect(await second).toMatch(new RegExp(`^${runtime.nodeId}-`));
    expect(first).toEqual([]);
    client.ws.close();
  });

  it('throws TypeError for a name that is no event, naming the events', async () => {
    const { runtime } = await startRuntime();
    // Names from before the rename: a JavaScript caller gets no compiler to tell them.
    const on = runtime.on.bind(runtime) as (type: string, handler: () => void) => () => void;
    const off = runtime.off.bind(runtime) as (type: string) => void;
    expect(() => on('resume', () => {})).toThrow(/unknown event "resume": the events are .*resumed/);
    expect(() => on('drop', () => {})).toThrow(/unknown event "drop": the events are .*dropped/);
    expect(() => off('resume')).toThrow(/unknown event "resume"/);
    expect(() => on('resumed', () => {})).not.toThrow();
  });
});

describe('client.on', () => {
  it('throws TypeError for a name that is no event', () => {
    const client = createClient('ws://127.0.0.1:1/');
    const on = client.on.bind(client) as (type: string, handler: () => void) => () => void;
    expect(() => on('resume', () => {})).toThrow(/unknown event "resume": the events are .*resumed/);
    expect(() => on('resumed', () => {})).not.toThrow();
    client.close();
  });
});
