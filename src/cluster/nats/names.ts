import { createHash } from 'node:crypto';
import type { InterestKey } from '../interest.js';

/** Longest token written out: a longer name's token is a digest of it, so subjects stay well inside the server's 4 KiB control line. */
const MAX_PLAIN_TOKEN = 64;

/**
 * One subject token (and key-value key token) for a room's or user's name, whatever characters it
 * holds (spaces, dots, `*`, `>`, any Unicode): the base64url of its UTF-8 (`lobby` → `bG9iYnk`), or,
 * when that would pass 64 characters (names over 48 bytes), `=` and the base64url of its SHA-256.
 * base64url never holds `=`, so the two forms never meet.
 */
export function tokenOf(name: string): string {
  const plain = Buffer.from(name).toString('base64url');
  return plain.length <= MAX_PLAIN_TOKEN ? plain : `=${createHash('sha256').update(name).digest('base64url')}`;
}

/** The subjects and buckets of one prefix. */
export class Names {
  /** Every node's broadcasts to everyone. */
  readonly all: string;
  /** Key-value buckets: heartbeats (keys expire after `nodeTimeoutMs`), the room and user indexes, and each node's member lists. */
  readonly buckets: { readonly nodes: string; readonly rooms: string; readonly users: string; readonly members: string };
  readonly #prefix: string;

  constructor(prefix: string) {
    this.#prefix = prefix;
    this.all = `${prefix}.all`;
    this.buckets = { nodes: `${prefix}-nodes`, rooms: `${prefix}-rooms`, users: `${prefix}-users`, members: `${prefix}-members` };
  }

  /** `<prefix>.room.<token>` or `<prefix>.user.<token>`. */
  subjectOf(key: InterestKey): string {
    const colon = key.indexOf(':');
    return `${this.#prefix}.${key.slice(0, colon)}.${tokenOf(key.slice(colon + 1))}`;
  }
}
