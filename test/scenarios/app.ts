/**
 * The application the scenario library runs against: a tiny JSON protocol
 * on berth. `{"join":room}`, `{"leave":room}`, `{"user":name}` answer
 * `{"joined"|"left"|"user": …, "ok": true|false}`; `{"say":room,"text":…}`
 * broadcasts `{"said":text,"room":room}`; `{"echo":x}` answers `{"echo":x}`;
 * `{"close":code}` makes the server close the connection with that code and
 * reason "asked". A user given at connect (the `x-scenario-user` header) is
 * bound by `authenticate`.
 */
import { createRuntime, type Runtime } from '../../src/index.js';
import type { AppOptions } from '../../src/testing/index.js';

export default function app(options: AppOptions): Runtime {
  const runtime = createRuntime({
    ...options,
    authenticate: (request) => {
      const user = request.headers['x-scenario-user'];
      return typeof user === 'string' ? { user } : {};
    },
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
    };
    if (message.join !== undefined) connection.send(JSON.stringify({ joined: message.join, ok: await connection.join(message.join) }));
    if (message.leave !== undefined) connection.send(JSON.stringify({ left: message.leave, ok: await connection.leave(message.leave) }));
    if (message.user !== undefined) connection.send(JSON.stringify({ user: message.user, ok: await connection.setUser(message.user) }));
    if (message.say !== undefined) runtime.sendToRoom(message.say, JSON.stringify({ said: message.text, room: message.say }));
    if (message.echo !== undefined) connection.send(JSON.stringify({ echo: message.echo }));
    if (message.close !== undefined) connection.close(message.close, 'asked');
  });
  return runtime;
}
