/** The check of the durable cluster tests can fail: each way a run can go wrong is named, and a told loss is not. */
import { describe, expect, test } from 'vitest';
import { check, type ClientLog, type Seen } from './ledger.js';

const msg = (q: number, offset = q + 1, epoch = 'e1', p = 'n0', data = `${p}/${q}`): Seen => ({
  kind: 'msg',
  stream: 'room:a',
  offset,
  epoch,
  p,
  q,
  data,
});
const log = (...seen: Seen[]): ClientLog => ({ name: 'c', seen });
const owed = { n0: { a: 3 } };

describe('ledger check', () => {
  test('every message once, in order: no problem', () => {
    const verdict = check([log(msg(0), msg(1), msg(2))], owed);
    expect(verdict.problems).toEqual([]);
    expect(verdict.delivered).toBe(3);
  });

  test('a message twice, one out of order, a silent gap, a silent tail: each named', () => {
    expect(check([log(msg(0), msg(0), msg(1), msg(2))], owed).problems).toEqual([
      'c: room:a offset 1 after 1 (repeated or out of order)',
      'c: room:a from n0 seq 0 after 0 (repeated or out of order)',
    ]);
    expect(check([log(msg(1), msg(0), msg(2))], owed).problems).toContain('c: room:a from n0 seq 0 after 1 (repeated or out of order)');
    expect(check([log(msg(0), msg(2))], owed).problems).toEqual([
      'c: room:a skipped offsets 2…2 unexplained',
      'c: room:a from n0 missed seq 1…1 (1) untold',
    ]);
    expect(check([log(msg(0), msg(1))], owed).problems).toEqual(['c: room:a from n0 missed seq 2…2 (1) at the end, untold']);
  });

  test('an epoch change is a gap too, unless told', () => {
    expect(check([log(msg(0), msg(1), msg(2, 1, 'e2'))], owed).problems).toEqual([
      'c: room:a went from epoch e1 to e2 unexplained (at #1)',
    ]);
  });

  test('a loss told by a lost event, or by a resume not recovered that names the stream, explains the gap before it', () => {
    // The stream now stands at #1 of e2: what lay before is lost, and the next message is #2.
    const lost: Seen = { kind: 'lost', stream: 'room:a', reason: 'epoch-changed', offset: 1, epoch: 'e2' };
    const told = check([log(msg(0), lost, msg(2, 2, 'e2'))], owed);
    expect(told.problems).toEqual([]);
    expect(told).toMatchObject({ told: 1, toldMissing: 1 });
    const resumed: Seen = { kind: 'resumed', recovered: false, reason: 'lost', lost: [{ stream: 'room:a', reason: 'trimmed' }] };
    expect(check([log(msg(0), resumed, msg(2, 3))], owed)).toMatchObject({ problems: [], told: 1, toldMissing: 1 });
    // A resume not recovered that names no stream explains nothing.
    const silent: Seen = { kind: 'resumed', recovered: false, reason: 'unknown-session', lost: [] };
    expect(check([log(msg(0), silent, msg(2, 3))], owed).problems).toEqual([
      'c: room:a skipped offsets 2…2 unexplained',
      'c: room:a from n0 missed seq 1…1 (1) untold',
    ]);
    // A notice of another stream, or one before the gap's last message, explains nothing either.
    expect(check([log({ ...lost, stream: 'room:b' }, msg(0), msg(2))], owed).problems).toHaveLength(2);
  });

  test('what comes after a lost must come: a skip past where it said the stream stands, or a missing tail, is named', () => {
    const lost: Seen = { kind: 'lost', stream: 'room:a', reason: 'trimmed', offset: 1, epoch: 'e1' };
    expect(check([log(msg(0), lost, msg(2, 3))], owed).problems).toEqual(['c: room:a skipped offsets 2…2 unexplained']);
    expect(check([log(msg(0), lost)], owed).problems).toEqual(['c: room:a from n0 missed seq 1…2 (2) at the end, untold']);
  });

  test('with unpublished, a gap no client saw any of passes, counted; one another client saw does not', () => {
    const verdict = check([log(msg(0), msg(2, 2))], owed, { unpublished: true });
    expect(verdict).toMatchObject({ problems: [], unpublished: 1 });
    const other: ClientLog = { name: 'd', seen: [msg(0), msg(1), msg(2)] };
    expect(check([log(msg(0), msg(2, 3)), other], owed, { unpublished: true }).problems).toEqual([
      'c: room:a skipped offsets 2…2 unexplained',
      'c: room:a from n0 missed seq 1…1 (1) untold',
    ]);
  });

  test('one (stream, epoch, offset) with two payloads across clients is named', () => {
    const other: ClientLog = { name: 'd', seen: [msg(0), msg(1, 2, 'e1', 'n0', 'other'), msg(2)] };
    expect(check([log(msg(0), msg(1), msg(2)), other], owed).problems).toEqual(['room:a e1 2 carried n0/1 to c and other to d']);
  });
});
