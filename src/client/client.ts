/**
 * `berth/client`: a `berth.v1` client for browsers and Node. Its life is the
 * client machine (machines/client.machine.ts): it reconnects by itself with
 * jittered backoff where the close code says it is worth it, honours the
 * server's pacing, queues what is sent while it is away (bounded), tracks
 * the position of every stream it receives, and does request/reply.
 */
import type { MachineInstance } from '../interpreter/instance.js';
import { CompiledMachine } from '../interpreter/machine.js';
import { realTimers } from '../util/timers.js';
import { clientMachine, clientStateOf, type ClientContext, type ClientEvent, type ClientInput } from '../../machines/client.machine.js';
import { EventHub } from '../util/event-hub.js';
import { InvalidMessage } from '../wire/codec.js';
import { MAX_EARLIER_TOKENS, PROTOCOL_V1, RESUME_INTENT } from '../wire/v1.js';
import {
  CLIENT_EVENTS,
  ClientRequestError,
  INVALID_SERVER_MESSAGE,
  type ClientEvents,
  type ClientOptions,
  type ClientSocket,
  type ClientState,
  type MessageMap,
  type RawMessages,
  type ReplyOf,
  type RequestOf,
  type WebSocketClass,
} from './api.js';
import { clientFrame, readServerFrame, resumeFrame, type ServerFrame } from './messages.js';

/** A request waiting for its answer. */
interface PendingRequest<Reply> {
  resolve(value: Reply): void;
  reject(error: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

/** Codes worth reconnecting after, from berth's close-code catalog (docs/close-codes.md). */
const RECONNECT = new Set([1001, 1005, 1006, 1011, 1012, 1013, 1014, 4001]);

const OPEN = 1;

/** Creates a client and starts connecting at once; with the option json set and a message map, messages are typed JSON. */
export function createClient(url: string, options?: ClientOptions & { readonly json?: false }): BerthClient<RawMessages>;
export function createClient<M extends MessageMap>(url: string, options: ClientOptions & { readonly json: true }): BerthClient<M>;
export function createClient<M extends MessageMap>(url: string, options: ClientOptions & { readonly json?: boolean } = {}): BerthClient<M> {
  return new BerthClient<M>(url, options);
}

/** A `berth.v1` client, as `createClient` makes it (docs/client.md). */
export class BerthClient<M extends MessageMap = RawMessages> {
  readonly url: string;
  readonly #options: ClientOptions;
  /** Text messages are JSON: values are stringified as they are sent and parsed as they arrive. */
  readonly #json: boolean;
  readonly #machine: MachineInstance<ClientContext, ClientEvent>;
  readonly #events = new EventHub<ClientEvents<M>>(CLIENT_EVENTS);
  readonly #queue: Array<string | Uint8Array> = [];
  readonly #pending = new Map<number, PendingRequest<ReplyOf<M>>>();
  readonly #positions = new Map<string, { offset: number; epoch: string }>();
  #socket: ClientSocket | undefined;
  #nextId = 0;
  /** While a resume is out: the positions the old connection had reached. */
  #resuming: Map<string, { offset: number; epoch: string }> | undefined;
  /**
   * While a resume is out: the tokens it named. If its connection drops before the answer, the next
   * resume names them after the new one: the server may never have read it, and then the session is
   * still under the earlier token.
   */
  #resumingTokens: readonly string[] = [];
  /** The session token of the last welcome: what the next connection resumes with. */
  #session: string | undefined;
  #state: ClientState = 'connecting';
  /** The connection id the server gave in its last welcome. */
  id: string | undefined;

  constructor(url: string, options: ClientOptions & { readonly json?: boolean }) {
    this.url = url;
    this.#options = options;
    this.#json = options.json === true;
    this.#machine = BerthClient.#compiled().start(
      {
        backoff: { initialMs: options.backoff?.initialMs ?? 250, maxMs: options.backoff?.maxMs ?? 30_000 },
        closeTimeoutMs: options.closeTimeoutMs ?? 5000,
        connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
        reconnectable: options.reconnect ?? ((code) => RECONNECT.has(code)),
        random: Math.random,
      },
      realTimers,
      {
        processed: (path) => {
          const state = clientStateOf(path);
          if (state === this.#state) return;
          this.#state = state;
          this.#emit('state', state);
        },
        done: () => {},
        // A bug in berth/client: reported as XState reports an actor's unhandled error, out of band.
        failed: (error) =>
          setTimeout(() => {
            throw error;
          }),
      },
      this,
    );
  }

  /**
   * The client machine, compiled once for every client (src/interpreter/, held to the
   * machine by test/interpreter/): a client holds its state and context, not an
   * XState Actor. Its actions reach the client they run for as `self`.
   */
  static #compiledMachine: CompiledMachine<ClientContext, ClientEvent, ClientInput, undefined> | undefined;

  static #compiled(): CompiledMachine<ClientContext, ClientEvent, ClientInput, undefined> {
    const client = (self: unknown) => self as BerthClient<MessageMap>;
    BerthClient.#compiledMachine ??= new CompiledMachine(
      clientMachine.provide({
        actions: {
          openSocket: ({ self }) => void client(self).#open(),
          closeSocket: ({ self }, { code, reason }) => client(self).#socket?.close(code, reason),
          terminateSocket: ({ self }) => {
            const owner = client(self);
            const socket = owner.#socket;
            owner.#socket = undefined;
            // ws can drop a socket at once; a browser's WebSocket can only be asked to close.
            const terminate = (socket as unknown as { terminate?: () => void } | undefined)?.terminate;
            if (terminate !== undefined) terminate.call(socket);
            else socket?.close();
          },
          flushQueue: ({ self }) => {
            const owner = client(self);
            // In order; if the socket dies meanwhile, the rest waits for the next connection.
            let sent = 0;
            while (sent < owner.#queue.length && owner.#write(owner.#queue[sent]!)) sent++;
            owner.#queue.splice(0, sent);
          },
          failPending: ({ self }) => client(self).#failPending('disconnected', 'the connection dropped before the reply'),
          reportClosed: ({ self }, close) => client(self).#emit('close', close),
        },
      }),
    );
    return BerthClient.#compiledMachine;
  }

  get state(): ClientState {
    return this.#state;
  }

  /** The last position the client saw of each stream: where a resume would continue. */
  get positions(): ReadonlyMap<string, { readonly offset: number; readonly epoch: string }> {
    return this.#positions;
  }

  /** Subscribes; returns the unsubscribe. A name that is no event throws `TypeError`. */
  on<K extends keyof ClientEvents<M>>(type: K, handler: (event: ClientEvents<M>[K]) => void): () => void {
    return this.#events.on(type, handler);
  }

  /** Sends a message to the application; queued while not open. False if the queue is full or the client closed. */
  send(data: M['send']): boolean {
    const frame = clientFrame({ t: 'msg' }, data, this.#json);
    // Open, but its socket may already be closing while its close event is on its way: then it is queued.
    if (this.#state === 'open' && this.#write(frame)) return true;
    if (this.#state === 'closing' || this.#state === 'closed') return false;
    if (this.#queue.length >= (this.#options.maxQueue ?? 1000)) return false;
    this.#queue.push(frame);
    return true;
  }

  /** Asks the server's request handler; rejects with a `ClientRequestError`. Only while open. */
  request(data: RequestOf<M>, options: { timeoutMs?: number } = {}): Promise<ReplyOf<M>> {
    const disconnected = () => new ClientRequestError('disconnected', `the client is ${this.#state}`);
    if (this.#state !== 'open' || this.#socket?.readyState !== OPEN) return Promise.reject(disconnected());
    const id = this.#nextId++;
    const frame = clientFrame({ t: 'req', id }, data, this.#json);
    return new Promise((resolve, reject) => {
      const timeoutMs = options.timeoutMs ?? this.#options.requestTimeoutMs ?? 10_000;
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new ClientRequestError('timeout', `no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
      this.#write(frame);
    });
  }

  /** Closes for good, with `code` and `reason` [default 1000, '']. */
  close(code = 1000, reason = ''): void {
    if (this.#state === 'closed') return;
    this.#queue.length = 0;
    this.#machine.send({ type: 'client.close', code, reason });
  }

  async #open(): Promise<void> {
    let WebSocketClass = this.#options.WebSocket ?? (globalThis as { WebSocket?: WebSocketClass }).WebSocket;
    if (WebSocketClass === undefined) {
      WebSocketClass = await nodeWebSocket();
      // The machine may have moved on (closed) while `ws` was being loaded. Asked only then: run by the
      // entry action itself, the snapshot is still the state being left (reconnecting), not connecting.
      if (clientStateOf(this.#machine.state ?? 'closed') !== 'connecting') return;
    }
    // With a session to resume, it says so in the handshake, so that nothing live comes before the replay.
    const socket = new WebSocketClass(this.url, this.#session === undefined ? [PROTOCOL_V1] : [PROTOCOL_V1, RESUME_INTENT]);
    socket.binaryType = 'arraybuffer';
    this.#socket = socket;
    socket.onmessage = (event) => {
      if (this.#socket === socket) this.#receive(event.data);
    };
    socket.onerror = () => {};
    socket.onclose = (event) => {
      if (this.#socket !== socket) return;
      this.#socket = undefined;
      this.#machine.send({ type: 'socket.closed', code: event.code, reason: event.reason });
    };
  }

  /** What the application gets of a text payload: the text, or with `json` its value; undefined if that is not JSON. */
  #decode(text: string): { value: unknown } | undefined {
    if (!this.#json) return { value: text };
    try {
      return { value: JSON.parse(text) as unknown };
    } catch {
      this.#emit('error', { code: 'invalid-json', message: `a text message is not JSON: ${text.slice(0, 40)}` });
      return undefined;
    }
  }

  /** False if the socket is no longer open (it is closing, or gone): nothing was written. */
  #write(frame: string | Uint8Array): boolean {
    if (this.#socket?.readyState !== OPEN) return false;
    this.#socket.send(frame);
    return true;
  }

  #receive(data: unknown): void {
    let frame: ServerFrame | undefined;
    try {
      frame = readServerFrame(data);
    } catch (error) {
      if (!(error instanceof InvalidMessage)) throw error;
      this.#invalid(error);
      return;
    }
    // A kind of a later version of berth.v1: ignored, as the protocol's versioning rule says.
    if (frame === undefined) return;
    const { message, payload } = frame;
    switch (message.t) {
      case 'welcome': {
        this.id = message.id;
        this.#emit('welcome', { id: this.id });
        const previous = this.#session;
        this.#session = message.session;
        if (previous === undefined || this.#session === undefined) {
          this.#machine.send({ type: 'server.welcome' });
          return;
        }
        // Back after a drop: ask for the session, and be open once its replay is in.
        // A resume that got no answer before this connection dropped too still counts what it knew.
        const known = new Map([...(this.#resuming ?? []), ...this.#positions]);
        // What the new connection says of its streams (rooms the application joined it to as it
        // arrived) holds whatever the outcome; what the old one knew holds only if it is recovered.
        const earlier = this.#resuming === undefined ? [] : this.#resumingTokens.slice(0, MAX_EARLIER_TOKENS);
        this.#resuming = known;
        this.#resumingTokens = [previous, ...earlier];
        this.#positions.clear();
        this.#write(resumeFrame(previous, known, earlier));
        this.#machine.send({ type: 'server.resuming' });
        return;
      }
      case 'resumed': {
        const { recovered } = message;
        const lost = (message.lost ?? []).map(({ s, reason }) => ({ stream: s, reason }));
        // Not recovered: the connection started fresh, and what the old one knew of its streams no longer holds.
        const before = this.#resuming;
        this.#resuming = undefined;
        this.#resumingTokens = [];
        if (recovered && before !== undefined) {
          for (const [stream, position] of before) if (!this.#positions.has(stream)) this.#positions.set(stream, position);
        }
        this.#emit('resumed', { recovered, lost, reason: recovered ? undefined : message.reason });
        this.#machine.send({ type: 'server.welcome' });
        return;
      }
      case 'msg': {
        // The hot path of a busy client: the event is built whole, not spread, and text needs no wrapper.
        const { s: stream, o: offset, e: epoch } = message;
        this.#positions.set(stream, { offset, epoch });
        let data: unknown = payload;
        if (data === undefined) {
          if (!this.#json) data = message.d;
          else {
            const decoded = this.#decode(message.d!);
            if (decoded === undefined) return;
            data = decoded.value;
          }
        }
        this.#emit('message', { stream, offset, epoch, data: data as M['receive'] });
        return;
      }
      case 'joined':
      case 'skip':
        this.#positions.set(message.s, { offset: message.o, epoch: message.e });
        return;
      case 'lost':
        // Messages of the stream were lost on their way to the server's node and its history no longer
        // has them: the stream goes on from here, and the application is told which stream and why.
        this.#positions.set(message.s, { offset: message.o, epoch: message.e });
        this.#emit('lost', { stream: message.s, reason: message.reason });
        return;
      case 'left':
        this.#positions.delete(message.s);
        this.#resuming?.delete(message.s);
        return;
      case 'reply':
      case 'error': {
        const pending = this.#take(message.id);
        if (pending === undefined) {
          if (message.t === 'error') this.#emit('error', { code: message.code, message: message.message });
          return;
        }
        if (message.t === 'error') {
          pending.reject(new ClientRequestError(message.code, message.message));
          return;
        }
        const decoded = payload !== undefined ? { value: payload } : this.#decode(message.d!);
        if (decoded === undefined) pending.reject(new ClientRequestError('invalid-json', 'the reply is not JSON'));
        else pending.resolve(decoded.value as ReplyOf<M>);
        return;
      }
    }
  }

  /**
   * The server sent a frame that is no `berth.v1` message: it is skipped. One that names a request
   * still waiting fails that request; any other is an `error` event.
   */
  #invalid(error: InvalidMessage): void {
    const why = `the server sent no berth.v1 message: ${error.message}`;
    const pending = this.#take(error.id);
    if (pending !== undefined) pending.reject(new ClientRequestError(INVALID_SERVER_MESSAGE, why));
    else this.#emit('error', { code: INVALID_SERVER_MESSAGE, message: why });
  }

  /** The request still waiting under `id`, no longer waiting; undefined if none is. */
  #take(id: unknown): PendingRequest<ReplyOf<M>> | undefined {
    const pending = typeof id === 'number' ? this.#pending.get(id) : undefined;
    if (pending === undefined) return undefined;
    this.#pending.delete(id as number);
    clearTimeout(pending.timer);
    return pending;
  }

  #failPending(code: string, why: string): void {
    for (const [id, pending] of this.#pending) {
      clearTimeout(pending.timer);
      this.#pending.delete(id);
      pending.reject(new ClientRequestError(code, why));
    }
  }

  #emit<K extends keyof ClientEvents<M>>(type: K, event: ClientEvents<M>[K]): void {
    // An application handler's failure must not stop the client; it is the application's to see.
    this.#events.emit(type, event, (error) =>
      queueMicrotask(() => {
        throw error;
      }),
    );
  }
}

/** Node 20 has no global WebSocket: `ws` stands in. */
async function nodeWebSocket(): Promise<WebSocketClass> {
  const module = (await import('ws')) as unknown as { WebSocket: WebSocketClass };
  return module.WebSocket;
}
