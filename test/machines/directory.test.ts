import { describe, expect, it } from 'vitest';
import { Directory, type DirectoryEntry } from '../../machines/directory.js';
import type { Target } from '../../machines/types.js';

/** Ports and refs are opaque to the directory: plain strings are enough. */
type TestDirectory = Directory<string, string>;

function directory(...ids: string[]): TestDirectory {
  const d: TestDirectory = new Directory();
  for (const id of ids) d.register(id, `ref-${id}`, `port-${id}`);
  return d;
}

/** Ids visited by `forEachRecipient`, and its return value. */
function recipients(d: TestDirectory, target: Target, except?: string): { ids: string[]; count: number } {
  const ids: string[] = [];
  const count = d.forEachRecipient(target, except, (entry) => ids.push(entry.id));
  return { ids: ids.sort(), count };
}

const idsOf = (set: Set<DirectoryEntry<string, string>> | undefined) => (set === undefined ? undefined : [...set].map((e) => e.id).sort());

describe('Directory.register', () => {
  it('adds an active entry with its ref and port, no user and no rooms', () => {
    const d: TestDirectory = new Directory();
    expect(d.register('a', 'ref-a', 'port-a')).toBe(true);
    const entry = d.connections.get('a');
    expect(entry).toMatchObject({ id: 'a', ref: 'ref-a', port: 'port-a', user: undefined, leaving: false });
    expect([...entry!.rooms]).toEqual([]);
    expect(d.isActive('a')).toBe(true);
    expect(d.users.size).toBe(0);
  });

  it('binds the user given at registration', () => {
    const d: TestDirectory = new Directory();
    expect(d.register('a', 'ref-a', 'port-a', 'alice')).toBe(true);
    expect(d.connections.get('a')!.user).toBe('alice');
    expect(idsOf(d.users.get('alice'))).toEqual(['a']);
  });

  it('refuses an id that is already registered, keeping the first entry untouched', () => {
    const d = directory('a');
    const first = d.connections.get('a');
    expect(d.register('a', 'ref-other', 'port-other', 'mallory')).toBe(false);
    expect(d.connections.get('a')).toBe(first);
    expect(first).toMatchObject({ ref: 'ref-a', port: 'port-a', user: undefined });
    expect(d.users.size).toBe(0);
  });

  it('refuses an id that is leaving but not yet removed', () => {
    const d = directory('a');
    d.markLeaving('a');
    expect(d.register('a', 'ref-a2', 'port-a2')).toBe(false);
  });

  it('accepts an id again after it was removed', () => {
    const d = directory('a');
    d.remove('a');
    expect(d.register('a', 'ref-a2', 'port-a2')).toBe(true);
    expect(d.isActive('a')).toBe(true);
  });
});

describe('Directory.isActive', () => {
  it('is false for an unknown id and for a leaving entry', () => {
    const d = directory('a');
    expect(d.isActive('ghost')).toBe(false);
    d.markLeaving('a');
    expect(d.isActive('a')).toBe(false);
  });
});

describe('Directory.join', () => {
  it('adds an active connection to a room, on both sides of the index', () => {
    const d = directory('a', 'b');
    expect(d.join('a', 'lobby')).toBe(true);
    expect(d.join('b', 'lobby')).toBe(true);
    expect(idsOf(d.rooms.get('lobby'))).toEqual(['a', 'b']);
    expect([...d.connections.get('a')!.rooms]).toEqual(['lobby']);
  });

  it('is idempotent: joining twice succeeds and keeps one membership', () => {
    const d = directory('a');
    expect(d.join('a', 'lobby')).toBe(true);
    expect(d.join('a', 'lobby')).toBe(true);
    expect(d.rooms.get('lobby')!.size).toBe(1);
    expect(d.connections.get('a')!.rooms.size).toBe(1);
  });

  it('lets a connection be in several rooms', () => {
    const d = directory('a');
    d.join('a', 'lobby');
    d.join('a', 'kitchen');
    expect([...d.connections.get('a')!.rooms].sort()).toEqual(['kitchen', 'lobby']);
    expect([...d.rooms.keys()].sort()).toEqual(['kitchen', 'lobby']);
  });

  it('refuses a leaving connection and creates no room', () => {
    const d = directory('a');
    d.markLeaving('a');
    expect(d.join('a', 'lobby')).toBe(false);
    expect(d.rooms.size).toBe(0);
    expect(d.connections.get('a')!.rooms.size).toBe(0);
  });

  it('refuses an unknown connection and creates no room', () => {
    const d = directory();
    expect(d.join('ghost', 'lobby')).toBe(false);
    expect(d.rooms.size).toBe(0);
  });
});

describe('Directory.leave', () => {
  it('removes a member from the room, on both sides of the index', () => {
    const d = directory('a', 'b');
    d.join('a', 'lobby');
    d.join('b', 'lobby');
    expect(d.leave('a', 'lobby')).toBe(true);
    expect(idsOf(d.rooms.get('lobby'))).toEqual(['b']);
    expect(d.connections.get('a')!.rooms.size).toBe(0);
  });

  it('deletes a room once its last member leaves', () => {
    const d = directory('a');
    d.join('a', 'lobby');
    d.leave('a', 'lobby');
    expect(d.rooms.has('lobby')).toBe(false);
    expect(d.rooms.size).toBe(0);
  });

  it('returns false when the connection is not a member, or unknown', () => {
    const d = directory('a', 'b');
    d.join('b', 'lobby');
    expect(d.leave('a', 'lobby')).toBe(false);
    expect(d.leave('a', 'nowhere')).toBe(false);
    expect(d.leave('ghost', 'lobby')).toBe(false);
    expect(idsOf(d.rooms.get('lobby'))).toEqual(['b']);
  });

  it('returns false for a leaving connection (it is in no room any more)', () => {
    const d = directory('a');
    d.join('a', 'lobby');
    d.markLeaving('a');
    expect(d.leave('a', 'lobby')).toBe(false);
  });
});

describe('Directory.bind', () => {
  it('binds a user to an active connection', () => {
    const d = directory('a');
    expect(d.bind('a', 'alice')).toBe(true);
    expect(d.connections.get('a')!.user).toBe('alice');
    expect(idsOf(d.users.get('alice'))).toEqual(['a']);
  });

  it('keeps several connections under one user', () => {
    const d = directory('a', 'b');
    d.bind('a', 'alice');
    d.bind('b', 'alice');
    expect(idsOf(d.users.get('alice'))).toEqual(['a', 'b']);
  });

  it('rebinding moves the mapping and deletes the emptied old user', () => {
    const d = directory('a');
    d.bind('a', 'alice');
    expect(d.bind('a', 'bob')).toBe(true);
    expect(d.users.has('alice')).toBe(false);
    expect(idsOf(d.users.get('bob'))).toEqual(['a']);
    expect(d.connections.get('a')!.user).toBe('bob');
  });

  it('rebinding keeps the old user while other connections still have it', () => {
    const d = directory('a', 'b');
    d.bind('a', 'alice');
    d.bind('b', 'alice');
    d.bind('a', 'bob');
    expect(idsOf(d.users.get('alice'))).toEqual(['b']);
    expect(idsOf(d.users.get('bob'))).toEqual(['a']);
  });

  it('binding the same user again succeeds and changes nothing', () => {
    const d = directory('a');
    d.bind('a', 'alice');
    expect(d.bind('a', 'alice')).toBe(true);
    expect(d.users.get('alice')!.size).toBe(1);
  });

  it('unbinds with undefined, deleting the emptied user', () => {
    const d = directory('a');
    d.bind('a', 'alice');
    expect(d.bind('a', undefined)).toBe(true);
    expect(d.connections.get('a')!.user).toBeUndefined();
    expect(d.users.size).toBe(0);
  });

  it('unbinding a connection without a user succeeds and changes nothing', () => {
    const d = directory('a');
    expect(d.bind('a', undefined)).toBe(true);
    expect(d.users.size).toBe(0);
  });

  it('refuses a leaving or unknown connection', () => {
    const d = directory('a');
    d.markLeaving('a');
    expect(d.bind('a', 'alice')).toBe(false);
    expect(d.bind('ghost', 'alice')).toBe(false);
    expect(d.users.size).toBe(0);
  });
});

describe('Directory.markLeaving', () => {
  it('takes the connection out of every room and its user, keeping it registered as leaving', () => {
    const d = directory('a', 'b');
    d.bind('a', 'alice');
    d.bind('b', 'bob');
    d.join('a', 'lobby');
    d.join('a', 'kitchen');
    d.join('b', 'lobby');
    d.markLeaving('a');
    const entry = d.connections.get('a')!;
    expect(entry.leaving).toBe(true);
    expect(entry.rooms.size).toBe(0);
    expect(d.isActive('a')).toBe(false);
    // Emptied rooms and users are deleted; the others keep their members.
    expect([...d.rooms.keys()]).toEqual(['lobby']);
    expect(idsOf(d.rooms.get('lobby'))).toEqual(['b']);
    expect([...d.users.keys()]).toEqual(['bob']);
  });

  it('is idempotent and a no-op for an unknown id', () => {
    const d = directory('a', 'b');
    d.join('b', 'lobby');
    d.markLeaving('a');
    const before = d.toJSON();
    d.markLeaving('a');
    d.markLeaving('ghost');
    expect(d.toJSON()).toEqual(before);
  });
});

describe('Directory.remove', () => {
  it('forgets a connection entirely: registry, rooms and user', () => {
    const d = directory('a', 'b');
    d.bind('a', 'alice');
    d.join('a', 'lobby');
    d.join('b', 'lobby');
    d.remove('a');
    expect(d.connections.has('a')).toBe(false);
    expect(d.isActive('a')).toBe(false);
    expect(idsOf(d.rooms.get('lobby'))).toEqual(['b']);
    expect(d.users.size).toBe(0);
  });

  it('forgets a connection that was already leaving', () => {
    const d = directory('a');
    d.join('a', 'lobby');
    d.markLeaving('a');
    d.remove('a');
    expect(d.toJSON()).toEqual({ connections: {}, rooms: {}, users: {} });
  });

  it('is a no-op for an unknown id', () => {
    const d = directory('a');
    d.remove('ghost');
    expect([...d.connections.keys()]).toEqual(['a']);
  });
});

describe('Directory.forEachRecipient', () => {
  /** a, b in lobby as alice; c in lobby as bob; d in no room, no user; e leaving (was in lobby as alice). */
  function populated(): TestDirectory {
    const d = directory('a', 'b', 'c', 'd', 'e');
    for (const id of ['a', 'b', 'c', 'e']) d.join(id, 'lobby');
    d.bind('a', 'alice');
    d.bind('b', 'alice');
    d.bind('c', 'bob');
    d.bind('e', 'alice');
    d.markLeaving('e');
    return d;
  }

  it('visits the members of a room and returns how many', () => {
    expect(recipients(populated(), { kind: 'room', room: 'lobby' })).toEqual({ ids: ['a', 'b', 'c'], count: 3 });
  });

  it('visits the connections of a user', () => {
    expect(recipients(populated(), { kind: 'user', user: 'alice' })).toEqual({ ids: ['a', 'b'], count: 2 });
  });

  it('visits every active connection for all, skipping leaving ones', () => {
    expect(recipients(populated(), { kind: 'all' })).toEqual({ ids: ['a', 'b', 'c', 'd'], count: 4 });
  });

  it.each<[string, Target, string[]]>([
    ['a room', { kind: 'room', room: 'lobby' }, ['a', 'c']],
    ['a user', { kind: 'user', user: 'alice' }, ['a']],
    ['all', { kind: 'all' }, ['a', 'c', 'd']],
  ])('skips the except connection for %s', (_, target, ids) => {
    expect(recipients(populated(), target, 'b')).toEqual({ ids, count: ids.length });
  });

  it('ignores an except id that is not a recipient', () => {
    expect(recipients(populated(), { kind: 'room', room: 'lobby' }, 'ghost').count).toBe(3);
  });

  it('skips an entry flagged leaving even if an index still holds it', () => {
    // markLeaving removes entries from the indexes; flagging by hand checks the guard in forEachRecipient itself.
    const d = directory('a', 'b');
    d.join('a', 'lobby');
    d.join('b', 'lobby');
    d.connections.get('b')!.leaving = true;
    expect(recipients(d, { kind: 'room', room: 'lobby' })).toEqual({ ids: ['a'], count: 1 });
  });

  it.each<[string, Target]>([
    ['an unknown room', { kind: 'room', room: 'nowhere' }],
    ['an unknown user', { kind: 'user', user: 'nobody' }],
    ['a room emptied by its last member leaving', { kind: 'room', room: 'kitchen' }],
  ])('visits nothing and returns 0 for %s', (_, target) => {
    const d = populated();
    d.join('a', 'kitchen');
    d.leave('a', 'kitchen');
    expect(recipients(d, target)).toEqual({ ids: [], count: 0 });
  });

  it('visits nothing and returns 0 for all in an empty directory', () => {
    expect(recipients(directory(), { kind: 'all' })).toEqual({ ids: [], count: 0 });
  });

  it('returns 0 when the only recipient is the except connection', () => {
    const d = directory('a');
    d.join('a', 'lobby');
    expect(recipients(d, { kind: 'room', room: 'lobby' }, 'a')).toEqual({ ids: [], count: 0 });
  });

  it('hands the visitor the entry with its port', () => {
    const d = directory('a');
    const ports: string[] = [];
    d.forEachRecipient({ kind: 'all' }, undefined, (entry) => ports.push(entry.port));
    expect(ports).toEqual(['port-a']);
  });
});

describe('Directory.toJSON', () => {
  it('is empty for an empty directory', () => {
    expect(directory().toJSON()).toEqual({ connections: {}, rooms: {}, users: {} });
  });

  it('shows connections, rooms and users as plain data', () => {
    const d = directory('a', 'b', 'c');
    d.join('a', 'lobby');
    d.join('b', 'lobby');
    d.join('a', 'kitchen');
    d.bind('a', 'alice');
    d.bind('b', 'alice');
    d.markLeaving('c');
    const view = d.toJSON();
    expect(view).toEqual({
      connections: {
        a: { user: 'alice', rooms: ['lobby', 'kitchen'], leaving: false },
        b: { user: 'alice', rooms: ['lobby'], leaving: false },
        c: { user: undefined, rooms: [], leaving: true },
      },
      rooms: { lobby: ['a', 'b'], kitchen: ['a'] },
      users: { alice: ['a', 'b'] },
    });
  });

  it('is a copy: changing the view does not change the directory', () => {
    const d = directory('a');
    d.join('a', 'lobby');
    const view = d.toJSON();
    view.rooms['lobby']!.push('ghost');
    view.connections['a']!.rooms.push('ghost');
    expect(d.toJSON()).toEqual({
      connections: { a: { user: undefined, rooms: ['lobby'], leaving: false } },
      rooms: { lobby: ['a'] },
      users: {},
    });
  });

  it('lists no emptied room or user', () => {
    const d = directory('a');
    d.join('a', 'lobby');
    d.bind('a', 'alice');
    d.leave('a', 'lobby');
    d.bind('a', undefined);
    expect(d.toJSON()).toEqual({ connections: { a: { user: undefined, rooms: [], leaving: false } }, rooms: {}, users: {} });
    expect(d.rooms.size).toBe(0);
    expect(d.users.size).toBe(0);
  });
});
