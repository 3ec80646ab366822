/**
 * Just enough of `berth.v1` over a WebSocket for a broadcast receiver: the
 * upgrade asks for the `berth.v1` subprotocol, the server's `welcome` makes
 * the connection ready, and a stream message
 * `{"t":"msg","s":stream,"o":offset,"e":epoch,"d":"…"}` carries the benchmark
 * payload in `d` (it has no quotes or backslashes, so JSON leaves it as it
 * is). `joined` and the like are protocol traffic; anything else (a `lost`,
 * an `error`) counts as malformed and fails the run. Used where berth's
 * durable streams are measured (cluster-fanout-durable): they number what
 * reaches `berth.v1` clients.
 */
import { CLIENT_MESSAGE, HANDLED, READY, UNKNOWN, type Dialect } from './dialect.js';
import { textFrame, type WireConnection } from './wire.js';

const MESSAGE = Buffer.from('{"t":"msg",');
const WELCOME = Buffer.from('{"t":"welcome"');
const PROTOCOL_TRAFFIC = [Buffer.from('{"t":"joined"'), Buffer.from('{"t":"left"'), Buffer.from('{"t":"skip"')];
/** `"d":"`: the payload follows. */
const DATA = Buffer.from('"d":"');

function startsWith(connection: WireConnection, expected: Buffer): boolean {
  if (connection.prefixLength < expected.length) return false;
  for (let i = 0; i < expected.length; i++) if (connection.prefix[i] !== expected[i]) return false;
  return true;
}

export const berthV1Dialect: Dialect = {
  path: (room) => `/?room=${encodeURIComponent(room)}`,
  protocol: 'berth.v1',
  messageFrame: textFrame(JSON.stringify({ t: 'msg', d: CLIENT_MESSAGE })),
  upgraded: () => false,
  inspect(connection: WireConnection): number {
    if (startsWith(connection, MESSAGE)) {
      const at = connection.prefix.indexOf(DATA, MESSAGE.length);
      return at === -1 || at + DATA.length > connection.prefixLength ? UNKNOWN : at + DATA.length;
    }
    if (startsWith(connection, WELCOME)) return READY;
    return PROTOCOL_TRAFFIC.some((kind) => startsWith(connection, kind)) ? HANDLED : UNKNOWN;
  },
  payloadOf(message: string): string | undefined {
    const parsed: unknown = JSON.parse(message);
    const { t, d } = parsed as { t?: unknown; d?: unknown };
    return t === 'msg' && typeof d === 'string' ? d : undefined;
  },
};
