import { join } from 'node:path';
import { present } from '@fleet/service/invariant';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { packColumns, type SqlValue, unpackColumns } from '../src/crdt/pack.js';
import { compareValues } from '../src/crdt/values.js';
import { applyChangesets } from '../src/replication/apply.js';
import { versionChangesets } from '../src/replication/serve.js';
import type { Store } from '../src/store.js';
import { tempDir } from './agent.js';
import {
  allChangesets,
  clocks,
  exec,
  machinesSchema,
  openStore,
  rows,
  ship,
} from './crdt-helpers.js';

const stores: Store[] = [];
function store(): Store {
  const opened = openStore();
  stores.push(opened);
  return opened;
}
afterEach(() => {
  for (const opened of stores.splice(0)) opened.close();
});

const clockOf = (s: Store, cid: string) =>
  s.db.prepare('SELECT col_version, db_version, cl, seq FROM crsql_changes WHERE cid = ?').get(cid);

/** The format as cr-sqlite defines it, value by value through BigInt: the oracle for packColumns. */
function packByDefinition(values: SqlValue[]): Buffer {
  const int = (type: number, value: bigint) => {
    const bytes: number[] = [];
    for (let rest = BigInt.asUintN(64, value); rest !== 0n; rest >>= 8n) {
      bytes.unshift(Number(rest & 0xffn));
    }
    return Buffer.from([(bytes.length << 3) | type, ...bytes]);
  };
  const parts = values.map((value) => {
    if (value === null) return Buffer.of(5);
    if (typeof value === 'number' && !Number.isInteger(value)) {
      const float = Buffer.alloc(9, 2);
      float.writeDoubleBE(value, 1);
      return float;
    }
    if (typeof value === 'number' || typeof value === 'bigint') return int(1, BigInt(value));
    const bytes = typeof value === 'string' ? Buffer.from(value) : Buffer.from(value);
    return Buffer.concat([int(typeof value === 'string' ? 3 : 4, BigInt(bytes.length)), bytes]);
  });
  return Buffer.concat([Buffer.of(values.length), ...parts]);
}

describe('pk packing (cr-sqlite format)', () => {
  it('packs integers in the fewest bytes, text and blobs with their length', () => {
    expect(packColumns([12, 'hi', null]).toString('hex')).toBe('03' + '090c' + '0b026869' + '05');
    expect(packColumns([0]).toString('hex')).toBe('0101');
    expect(packColumns([-1]).toString('hex')).toBe('0141ffffffffffffffff');
    expect(packColumns([1.5]).toString('hex')).toBe('01023ff8000000000000');
    expect(packColumns([Buffer.from([1, 2])]).toString('hex')).toBe('010c020102');
  });

  it('round-trips every SQLite type', () => {
    const values = [
      0,
      1,
      255,
      256,
      -5,
      2 ** 40,
      9007199254740993n,
      0.25,
      '',
      'ünï',
      null,
      Buffer.from('ab'),
    ];
    expect(unpackColumns(packColumns(values))).toEqual(values);
  });

  it('packs any values exactly as the format is defined, value by value', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.constant(null),
            fc.integer(),
            fc.maxSafeInteger(),
            fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
            fc.double({ noNaN: true, noDefaultInfinity: true }),
            fc.string({ unit: 'grapheme', maxLength: 300 }),
            fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
          ),
          { maxLength: 6 },
        ),
        (values) => {
          expect(packColumns(values).toString('hex')).toBe(
            packByDefinition(values).toString('hex'),
          );
        },
      ),
    );
  });

  it('refuses truncated input', () => {
    expect(() => unpackColumns(Buffer.from('020b68', 'hex'))).toThrow(/truncated/);
  });
});

describe('SQLite value order', () => {
  it('orders NULL < numbers < text < blob, text by UTF-8 bytes', () => {
    const sorted = [Buffer.from('a'), 'b', 'a', 2, 1.5, null].sort(compareValues);
    expect(sorted).toEqual([null, 1.5, 2, 'a', 'b', Buffer.from('a')]);
    expect(compareValues('\uffff', '😀')).toBeLessThan(0); // UTF-16 order would say the opposite
  });
});

describe('local writes', () => {
  it('gives one version per transaction and a seq per change', () => {
    const a = store();
    expect(exec(a, "INSERT INTO machines (id, state, n) VALUES ('m1', 'created', 1)")).toBe(1);
    const changes = a.db
      .prepare('SELECT cid, col_version, db_version, cl, seq FROM crsql_changes ORDER BY seq')
      .all();
    expect(changes).toEqual([
      { cid: '-1', col_version: 1, db_version: 1, cl: 1, seq: 0 },
      { cid: 'state', col_version: 1, db_version: 1, cl: 1, seq: 1 },
      { cid: 'n', col_version: 1, db_version: 1, cl: 1, seq: 2 },
      { cid: 'data', col_version: 1, db_version: 1, cl: 1, seq: 3 },
    ]);
    expect(a.bookkeeping.version(0, 1)).toMatchObject({ last_seq: 3 });
  });

  it('versions only the columns whose value changed; a same-value update makes no version', () => {
    const a = store();
    exec(a, "INSERT INTO machines (id, state, n) VALUES ('m1', 'created', 1)");
    expect(exec(a, "UPDATE machines SET state = 'created', n = 1 WHERE id = 'm1'")).toBeNull();
    expect(exec(a, "UPDATE machines SET state = 'started', n = 1 WHERE id = 'm1'")).toBe(2);
    expect(clockOf(a, 'state')).toEqual({ col_version: 2, db_version: 2, cl: 1, seq: 0 });
    expect(clockOf(a, 'n')).toEqual({ col_version: 1, db_version: 1, cl: 1, seq: 2 });
  });

  it('counts the causal length through delete and re-insert', () => {
    const a = store();
    exec(a, "INSERT INTO machines (id) VALUES ('m1')");
    exec(a, "DELETE FROM machines WHERE id = 'm1'");
    expect(clockOf(a, '-1')).toMatchObject({ col_version: 2, cl: 2, db_version: 2 });
    expect(clockOf(a, 'state')).toBeUndefined();
    exec(a, "INSERT INTO machines (id, state) VALUES ('m1', 'again')");
    expect(clockOf(a, '-1')).toMatchObject({ col_version: 3, cl: 3 });
    expect(clockOf(a, 'state')).toMatchObject({ col_version: 1, cl: 3 });
  });

  it('builds the changes of rows inserted under new keys, and reads back any other write', () => {
    const a = store();
    const readBack = vi.spyOn(a.crdt, 'changesOf');
    const fresh = a.transaction([
      { sql: "INSERT INTO machines (id, state) VALUES ('m1', 'created')", params: [] },
      { sql: "INSERT INTO machines (id, n) VALUES ('m2', 7)", params: [] },
    ]);
    expect(readBack).not.toHaveBeenCalled();
    expect(fresh.changes.map(({ val, seq }) => [val, seq])).toEqual([
      [null, 0],
      ['created', 1],
      [null, 2],
      [null, 3],
      [null, 4],
      ['', 5],
      [7, 6],
      [null, 7],
    ]);
    expect(fresh.changes).toEqual(
      a.crdt.changesOf(0, present(fresh.version, "the write's version")),
    );
    readBack.mockClear();
    const again = a.transaction([
      { sql: "INSERT INTO machines (id) VALUES ('m3')", params: [] },
      { sql: "UPDATE machines SET state = 'started' WHERE id = 'm3'", params: [] },
    ]);
    expect(readBack).toHaveBeenCalledTimes(1);
    expect(again.changes.find((change) => change.cid === 'state')?.val).toBe('started');
  });

  it('gives the changed columns of an update consecutive seqs, in column order', () => {
    const a = store();
    exec(a, "INSERT INTO machines (id, state, n) VALUES ('m1', 'created', 1)");
    expect(
      exec(a, "UPDATE machines SET data = x'01', n = 1, state = 'started' WHERE id = 'm1'"),
    ).toBe(2);
    expect(clockOf(a, 'state')).toEqual({ col_version: 2, db_version: 2, cl: 1, seq: 0 });
    expect(clockOf(a, 'data')).toEqual({ col_version: 2, db_version: 2, cl: 1, seq: 1 });
    expect(a.bookkeeping.version(0, 2)).toMatchObject({ last_seq: 1 });
  });

  it('refuses a write to a CRR table that bypasses the transaction path (a plain SQLite client)', () => {
    const dir = tempDir();
    const a = openStore(machinesSchema, dir);
    stores.push(a);
    exec(a, "INSERT INTO machines (id, state) VALUES ('m1', 'created')");
    const plain = new Database(join(dir, 'corrosion.db'));
    try {
      // Every trigger first raises outside a write through the agent, whatever the statement's
      // conflict clause (OR IGNORE would skip a failed CHECK and write the row unrecorded).
      for (const sql of [
        "INSERT INTO machines (id) VALUES ('m2')",
        "INSERT OR IGNORE INTO machines (id) VALUES ('m2')",
        "INSERT OR REPLACE INTO machines (id) VALUES ('m1')",
        "UPDATE machines SET state = 'stopped'",
        "UPDATE OR IGNORE machines SET state = 'stopped'",
        "UPDATE machines SET id = 'm3'",
        'DELETE FROM machines',
      ]) {
        expect(() => plain.prepare(sql).run()).toThrow(
          'a CRR table was written outside a transaction',
        );
      }
    } finally {
      plain.close();
    }
    expect(rows(a)).toMatchObject([{ id: 'm1', state: 'created' }]);
  });

  it('gives rows written before their table was a CRR one version, a seq per clock', () => {
    const dir = tempDir();
    const plain = new Database(join(dir, 'corrosion.db'));
    plain.exec(machinesSchema);
    plain.exec("INSERT INTO machines (id, state) VALUES ('m1', 'a'), ('m2', 'b')");
    plain.close();
    const a = openStore(machinesSchema, dir);
    stores.push(a);
    const seqs = a.db.prepare('SELECT db_version, seq FROM crsql_changes ORDER BY seq').all() as {
      db_version: number;
      seq: number;
    }[];
    expect(seqs.map((clock) => clock.seq)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(new Set(seqs.map((clock) => clock.db_version))).toEqual(new Set([1]));
    expect(a.bookkeeping.version(0, 1)).toMatchObject({ last_seq: 7 });
  });

  it('treats a primary-key change as delete plus insert', () => {
    const a = store();
    exec(a, "INSERT INTO machines (id, state) VALUES ('m1', 's')");
    exec(a, "UPDATE machines SET id = 'm2' WHERE id = 'm1'");
    const b = store();
    ship(a, b);
    expect(rows(b)).toEqual(rows(a));
    expect(rows(b)).toMatchObject([{ id: 'm2', state: 's' }]);
  });
});

describe('merge rule', () => {
  it("Corrosion's example: same col_version, the greater value wins ('started' over 'destroyed')", () => {
    const [a, b] = [store(), store()];
    exec(a, "INSERT INTO machines (id, state) VALUES ('m1', 'created')");
    ship(a, b);
    exec(a, "UPDATE machines SET state = 'destroyed' WHERE id = 'm1'");
    exec(b, "UPDATE machines SET state = 'started' WHERE id = 'm1'");
    ship(a, b);
    ship(b, a);
    expect(rows(a)).toMatchObject([{ state: 'started' }]);
    expect(rows(b)).toEqual(rows(a));
    // Written after seeing 'started', 'destroyed' has the greater col_version and wins.
    exec(a, "UPDATE machines SET state = 'destroyed' WHERE id = 'm1'");
    ship(a, b);
    expect(rows(b)).toMatchObject([{ state: 'destroyed' }]);
  });

  it('a delete beats a concurrent update (greater causal length)', () => {
    const [a, b] = [store(), store()];
    exec(a, "INSERT INTO machines (id, state) VALUES ('m1', 'created')");
    ship(a, b);
    exec(a, "DELETE FROM machines WHERE id = 'm1'");
    for (const state of ['s1', 's2', 's3'])
      exec(b, `UPDATE machines SET state = '${state}' WHERE id = 'm1'`);
    ship(b, a);
    ship(a, b);
    expect(rows(a)).toEqual([]);
    expect(rows(b)).toEqual([]);
    expect(clocks(a)).toEqual(clocks(b));
  });

  it('delete then re-insert (causal length 3) beats a stale update', () => {
    const [a, b] = [store(), store()];
    exec(a, "INSERT INTO machines (id, state) VALUES ('m1', 'created')");
    ship(a, b);
    exec(b, "UPDATE machines SET state = 'stale' WHERE id = 'm1'");
    exec(b, "UPDATE machines SET state = 'staler' WHERE id = 'm1'");
    exec(a, "DELETE FROM machines WHERE id = 'm1'");
    exec(a, "INSERT INTO machines (id, state) VALUES ('m1', 'reborn')");
    ship(b, a);
    ship(a, b);
    expect(rows(a)).toMatchObject([{ id: 'm1', state: 'reborn' }]);
    expect(rows(b)).toEqual(rows(a));
    expect(clocks(a)).toEqual(clocks(b));
  });

  it('equal values are tie-broken by site id, so both store the same clock', () => {
    const [a, b] = [store(), store()];
    exec(a, "INSERT INTO machines (id, state) VALUES ('m1', 'same')");
    exec(b, "INSERT INTO machines (id, state) VALUES ('m1', 'same')");
    ship(a, b);
    ship(b, a);
    const winner = Buffer.compare(a.crdt.siteId, b.crdt.siteId) > 0 ? a : b;
    const stateClock = (s: Store) =>
      s.db.prepare("SELECT hex(site_id) AS site FROM crsql_changes WHERE cid = 'state'").get();
    expect(stateClock(a)).toEqual({ site: winner.crdt.siteId.toString('hex').toUpperCase() });
    expect(clocks(a)).toEqual(clocks(b));
  });

  it('a batch bringing one new row twice and a row the receiver knows merges as changesets one at a time do', () => {
    // Receiver `batched` takes the changesets in one apply (so one staged merge: m1's second whole
    // row and k's must go to the general merge, k's key slot stays unused); `single` one by one.
    const [a, b, batched, single] = [store(), store(), store(), store()];
    exec(a, "INSERT INTO machines (id, state) VALUES ('k', 'known')");
    ship(a, batched);
    ship(a, single);
    const before = new Set(allChangesets(a).map((set) => set.version));
    exec(a, "INSERT INTO machines (id, state) VALUES ('m1', 'from-a'), ('m2', 'a')");
    exec(b, "INSERT INTO machines (id, state) VALUES ('m1', 'from-b'), ('k', 'b'), ('m3', 'b')");
    const batch = [
      ...allChangesets(a).filter((set) => !before.has(set.version)),
      ...allChangesets(b),
    ];
    applyChangesets(batched, batch);
    for (const set of batch) applyChangesets(single, [set]);
    // New rows after the unused key slots get keys of their own.
    exec(a, "INSERT INTO machines (id, state) VALUES ('m4', 'a')");
    ship(a, batched);
    ship(a, single);
    ship(a, b);
    ship(b, a);
    for (const replica of [batched, single, b]) {
      expect(rows(replica)).toEqual(rows(a));
      expect(clocks(replica)).toEqual(clocks(a));
    }
    expect(rows(a).length).toBe(5);
  });

  it('a merge that fails leaves nothing staged behind for the next one', () => {
    // m1 arrives with a NULL in a NOT NULL column, so its staged insert fails and the batch rolls
    // back; the next batch (m2) must merge and report m2 alone.
    const [a, receiver] = [store(), store()];
    exec(a, "INSERT INTO machines (id, state) VALUES ('m1', 'created')");
    const [bad] = allChangesets(a);
    const broken = {
      ...present(bad, 'the first changeset'),
      changes: present(bad, 'the first changeset').changes.map((change) =>
        change.cid === 'state' ? { ...change, val: null } : change,
      ),
    };
    expect(() => applyChangesets(receiver, [broken])).toThrow(/NOT NULL/);
    exec(a, "INSERT INTO machines (id, state) VALUES ('m2', 'created')");
    const outcome = applyChangesets(
      receiver,
      allChangesets(a).filter((set) => set.version === 2),
    );
    expect(outcome.rows.map((row) => row.pk)).toEqual([['m2']]);
    expect(rows(receiver)).toEqual(rows(a).filter((row) => (row as { id: string }).id === 'm2'));
  });

  it('a re-insert of a live row (INSERT OR REPLACE) leaves writer and receivers with one sentinel clock', () => {
    // Both orders of site ids: with the sentinel rewritten, one of them diverged for good.
    for (const writerFirst of [true, false]) {
      const [a, b] = [store(), store()];
      const [origin, writer] =
        Buffer.compare(a.crdt.siteId, b.crdt.siteId) > 0 === writerFirst ? [b, a] : [a, b];
      exec(origin, "INSERT INTO machines (id, state) VALUES ('m1', 'created')");
      ship(origin, writer);
      exec(writer, "INSERT OR REPLACE INTO machines (id, state) VALUES ('m1', 'started')");
      expect(clockOf(writer, '-1')).toMatchObject({ col_version: 1, cl: 1, db_version: 1 });
      ship(writer, origin);
      expect(rows(origin)).toMatchObject([{ id: 'm1', state: 'started' }]);
      expect(clocks(writer)).toEqual(clocks(origin));
    }
  });

  it('a re-insert into a table of keys only makes a version with no change, which every node serves alike', () => {
    const schema = 'CREATE TABLE tags (name TEXT NOT NULL PRIMARY KEY);';
    const [a, b] = [openStore(schema), openStore(schema)];
    stores.push(a, b);
    exec(a, "INSERT INTO tags (name) VALUES ('x')");
    const again = exec(a, "INSERT OR REPLACE INTO tags (name) VALUES ('x')");
    ship(a, b);
    expect(rows(b, 'tags')).toEqual(rows(a, 'tags'));
    expect(clocks(b)).toEqual(clocks(a));
    expect(b.bookkeeping.gapCount()).toBe(0);
    expect(again).toBe(2);
    expect(versionChangesets(b, a.crdt.siteId, 2, 1 << 20)).toEqual(
      versionChangesets(a, a.crdt.siteId, 2, 1 << 20),
    );
  });

  it('keeps the origin db_version of merged changes (per-site versions)', () => {
    const [a, b] = [store(), store()];
    exec(a, "INSERT INTO machines (id) VALUES ('a1')");
    exec(a, "INSERT INTO machines (id) VALUES ('a2')");
    exec(b, "INSERT INTO machines (id) VALUES ('b1')");
    ship(a, b);
    expect(b.version).toBe(1);
    const versions = b.db
      .prepare(
        "SELECT DISTINCT id, db_version FROM crsql_changes JOIN machines ON 1 = 0 UNION SELECT hex(pk), db_version FROM crsql_changes WHERE cid = '-1' ORDER BY 2",
      )
      .all();
    expect(versions.map((row) => (row as { db_version: number }).db_version)).toEqual([1, 1, 2]);
  });
});

describe('gaps and partials', () => {
  it('out-of-order delivery leaves exactly the expected gaps and partials, which close', () => {
    const [a, b] = [store(), store()];
    for (let i = 1; i <= 5; i++)
      exec(a, `INSERT INTO machines (id, state) VALUES ('m${i}', 's${i}')`);
    const of = (version: number, maxBytes = 1 << 20) =>
      present(versionChangesets(a, a.crdt.siteId, version, maxBytes), `version ${version}`);
    const chunks4 = of(4, 30);
    expect(chunks4.length).toBeGreaterThan(1);
    const first4 = present(chunks4[0], 'the first chunk of version 4');
    applyChangesets(b, [...of(1), first4, ...of(5)]);
    const site = present(b.crdt.knownOrdinal(a.crdt.siteId), "a's ordinal on b");
    const state = present(b.bookkeeping.state().get(site), "a's state on b");
    expect(state.head).toBe(5);
    expect(state.gaps).toEqual([[2, 3]]);
    expect(state.partials).toEqual([
      { version: 4, lastSeq: 3, missing: [[first4.seqs[1] + 1, 3]] },
    ]);
    expect(rows(b)).toMatchObject([{ id: 'm1' }, { id: 'm5' }]);
    // Complete: the head and what came whole; not: a gap, a partial, past the head.
    const has = (version: number) => b.bookkeeping.has(site, version);
    expect([1, 2, 3, 4, 5, 6].map(has)).toEqual([true, false, false, false, true, false]);
    expect(applyChangesets(b, [...of(1), ...of(5)]).merged).toBe(0); // replays are skipped
    applyChangesets(b, [...of(3), ...chunks4.slice(1), ...of(2)]);
    expect([1, 2, 3, 4, 5, 6].map(has)).toEqual([true, true, true, true, true, false]);
    expect(b.bookkeeping.state().get(site)).toEqual({ head: 5, gaps: [], partials: [] });
    expect(b.bookkeeping.bufferedCount()).toBe(0);
    expect(rows(b)).toEqual(rows(a));
  });

  it('serves a version overwritten since as empty, and the receiver gap clears', () => {
    const [a, b] = [store(), store()];
    exec(a, "INSERT INTO machines (id, state) VALUES ('m1', 'created')");
    exec(a, "UPDATE machines SET state = 'started' WHERE id = 'm1'");
    exec(a, "UPDATE machines SET state = 'stopped' WHERE id = 'm1'");
    const version = (at: number) =>
      present(versionChangesets(a, a.crdt.siteId, at, 1 << 20), `version ${at}`);
    const v2 = version(2);
    expect(v2).toEqual([expect.objectContaining({ changes: [], seqs: [0, 0], lastSeq: 0 })]);
    applyChangesets(b, version(3));
    const site = present(b.crdt.knownOrdinal(a.crdt.siteId), "a's ordinal on b");
    expect(b.bookkeeping.state().get(site)?.gaps).toEqual([[1, 2]]);
    applyChangesets(b, [...v2, ...version(1)]);
    expect(b.bookkeeping.state().get(site)?.gaps).toEqual([]);
    expect(rows(b)).toEqual(rows(a));
    expect(clocks(b)).toEqual(clocks(a));
  });
});
