/**
 * The application the scenario library runs against: a tiny JSON protocol
 * on berth. `{"join":room}`, `{"leave":room}`, `{"user":name}` answer
 * `{"joined"|"left"|"user": …, "ok": true|false}`; `{"say":room,"text":…}`
 * broadcasts `{"said":text,"room":room}`; `{"echo":x}` answers `{"echo":x}`;
 * `{"close":code}` makes the server close the connection with that code and
 * reason "asked". `{"invite":user,"room":room}` joins every connection of
 * that user to the room and announces it there (`{"welcomed":user}`);
 * `{"kick":user,"room":room}` makes them leave it; both answer the sender
 * (`{"invited"|"kicked": user, "ok": […]}`, one answer per connection).
 * A user given at connect (the `x-scenario-user` header) is bound by
 * `authenticate`. The same commands arrive as raw text frames or as
 * `berth.v1` messages of a `berth/client` client.
 *
 * `options.history`, when a scenario gives one, is the limits of the
 * in-memory history (`{ "maxMessages": 2 }`), its age measured on the
 * scenario's simulated clock.
 */
import { createMemoryHistory, createRuntime, type MemoryHistoryOptions, type Runtime } from '../../src/index.js';
import type { AppOptions } from '../../src/testing/index.js';

export default function app(options: AppOptions): Runtime {
  const { history, ...rest } = options as AppOptions & { history?: MemoryHistoryOptions };
  const runtime = createRuntime({
    ...rest,
    ...(history !== undefined && { history: createMemoryHistory({ ...history, now: () => options.clock.now() }) }),
    authenticate: (request) => {
      const user = request.headers['x-scenario-user'];
      return typeof user === 'string' ? { user } : {};
    },
  });
  /** The open connections of a user. */
  const connectionsOf = (user: string) =>
    (runtime.snapshot().users[user] ?? []).flatMap((id) => {
      const connection = runtime.connection(id);
      return connection === undefined ? [] : [connection];
    });
  runtime.on('error', () => {}); // the scenarios assert what reaches the clients and the server state
  runtime.on('message', async ({ connection, data }) => {
    const message = JSON.parse(String(data)) as {
      join?: string;
      leave?: string;
      user?: string;
      say?: string;
      text?: string;
      echo?: unknown;
      close?: number;
      invite?: string;
      kick?: string;
      room?: string;
    };
    if (message.join !== undefined) connection.send(JSON.stringify({ joined: message.join, ok: await connection.join(message.join) }));
    if (message.leave !== undefined) connection.send(JSON.stringify({ left: message.leave, ok: await connection.leave(message.leave) }));
    if (message.user !== undefined) connection.send(JSON.stringify({ user: message.user, ok: await connection.setUser(message.user) }));
    if (message.say !== undefined) runtime.sendToRoom(message.say, JSON.stringify({ said: message.text, room: message.say }));
    if (message.echo !== undefined) connection.send(JSON.stringify({ echo: message.echo }));
    if (message.close !== undefined) connection.close(message.close, 'asked');
    if (message.invite !== undefined && message.room !== undefined) {
      const { invite: user, room } = message;
      const ok = await Promise.all(connectionsOf(user).map((member) => member.join(room)));
      runtime.sendToRoom(room, JSON.stringify({ welcomed: user }));
      connection.send(JSON.stringify({ invited: user, room, ok }));
    }
    if (message.kick !== undefined && message.room !== undefined) {
      const { kick: user, room } = message;
      const ok = await Promise.all(connectionsOf(user).map((member) => member.leave(room)));
      connection.send(JSON.stringify({ kicked: user, room, ok }));
    }
  });
  return runtime;
}
