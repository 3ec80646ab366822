/** The answering of `berth.v1` requests: one handler per runtime, whose failures cost their request only. */
import type { ServerConnection } from '../connection/connection.js';
import { encodeCheck, toPayload } from '../delivery/frame.js';
import { errorFrame, ProtocolErrorCode, replyFrame, type RequestId } from '../protocol/v1.js';
import { ErrorCode, RequestError, toBerthError, type BerthError } from '../util/errors.js';
import { isThenable } from '../util/thenable.js';
import type { RequestHandler } from './api.js';

export class Requests<TData> {
  readonly #report: (error: BerthError, connection: ServerConnection<TData>) => void;
  #handler: RequestHandler<TData> | undefined;

  constructor(report: (error: BerthError, connection: ServerConnection<TData>) => void) {
    this.#report = report;
  }

  set handler(handler: RequestHandler<TData> | undefined) {
    if (handler !== undefined && typeof handler !== 'function') throw new TypeError('a request handler must be a function');
    this.#handler = handler;
  }

  /** Runs the handler and answers with its reply or a typed error. */
  answer(connection: ServerConnection<TData>, id: RequestId, data: string | Buffer, binary: boolean): void {
    const fail = (thrown: unknown) => {
      if (thrown instanceof RequestError) {
        connection.deliver(errorFrame(thrown.code, thrown.message, id));
        return;
      }
      connection.deliver(errorFrame(ProtocolErrorCode.HANDLER_FAILED, 'the request handler failed', id));
      this.#report(
        toBerthError(ErrorCode.HANDLER_FAILED, `request handler failed (request ${JSON.stringify(id)} of ${connection.id})`, thrown),
        connection,
      );
    };
    const reply = (answer: unknown) => {
      try {
        encodeCheck(answer);
      } catch (error) {
        fail(error);
        return;
      }
      // The connection may have closed meanwhile: `deliver` then queues nothing.
      connection.deliver(replyFrame(id, toPayload(answer, undefined)));
    };
    const handler = this.#handler;
    if (handler === undefined) {
      connection.deliver(errorFrame(ProtocolErrorCode.NO_HANDLER, 'this server answers no requests', id));
      return;
    }
    let result: unknown;
    try {
      result = handler({ connection, data, binary });
    } catch (error) {
      fail(error);
      return;
    }
    if (isThenable(result)) Promise.resolve(result).then(reply, fail);
    else reply(result);
  }
}
