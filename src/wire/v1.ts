/**
 * What both ends of `berth.v1` share besides its framing (codec.ts): the
 * subprotocol names, a request's id, and the limits a client must keep to.
 */

/** The subprotocol name. */
export const PROTOCOL_V1 = 'berth.v1';

/**
 * Offered beside `berth.v1` by a client that will send `resume` as its first
 * message: the server then holds the connection's live messages from the
 * start, so that none comes before, or twice with, the replay. Never chosen.
 */
export const RESUME_INTENT = 'berth.resume';

/** What the name of every berth subprotocol starts with. */
export const BERTH_PREFIX = 'berth.';

/** A request's correlation id: chosen by the client, echoed in its reply or error. */
export type RequestId = number | string;

/** Most earlier tokens a resume may name. */
export const MAX_EARLIER_TOKENS = 4;
