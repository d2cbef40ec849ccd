// Apply throughput: remote changes merged per second on one node, beside plain better-sqlite3
// inserts of the same rows into the same table without CRDT metadata, measured in this run.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { applyChangesets } from '../dist/replication/apply.js';
import { versionChangesets } from '../dist/replication/serve.js';
import { Store } from '../dist/store.js';

export const schema = `CREATE TABLE machines (
  id TEXT NOT NULL PRIMARY KEY,
  app TEXT NOT NULL DEFAULT '',
  state TEXT NOT NULL DEFAULT '',
  region TEXT NOT NULL DEFAULT '',
  updated_at TEXT NOT NULL DEFAULT ''
);`;

/**
 * CPU time of this process (user + system, so SQLite's writes count): unlike wall time it does
 * not swing with whatever else shares the machine's cores.
 */
function cpuMs() {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/** Temp dirs of the run in progress, removed when it ends. */
const dirs = [];
const temp = () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-corrosion-bench-'));
  dirs.push(dir);
  return dir;
};
export const row = (i) => [
  `m-${i}`,
  `app-${i % 50}`,
  i % 3 === 0 ? 'started' : 'stopped',
  'iad',
  new Date(1e12 + i).toISOString(),
];
export const insert =
  'INSERT INTO machines (id, app, state, region, updated_at) VALUES (?, ?, ?, ?, ?)';

/** Rows written on an origin node in transactions of `perTx`, as the changesets it would send. */
function originChangesets(rows, perTx) {
  const origin = new Store(join(temp(), 'origin.db'), schema);
  const sets = [];
  for (let start = 0; start < rows; start += perTx) {
    const statements = [];
    for (let i = start; i < Math.min(rows, start + perTx); i++)
      statements.push({ sql: insert, params: row(i) });
    const { version } = origin.transaction(statements);
    sets.push(...versionChangesets(origin, origin.crdt.siteId, version, 1 << 30));
  }
  origin.close();
  return sets;
}

/** Each contender runs once on a small throwaway set first, so none of them pays the JIT's warm-up. */
export function measureApply(rows = 50_000, perTx = 100) {
  try {
    measureOnce(Math.min(rows, 3_000), perTx);
    return measureOnce(rows, perTx);
  } finally {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  }
}

function measureOnce(rows, perTx) {
  const sets = originChangesets(rows, perTx);
  const changes = sets.reduce((sum, set) => sum + set.changes.length, 0);
  const receiver = new Store(join(temp(), 'receiver.db'), schema);
  let started = cpuMs();
  for (let at = 0; at < sets.length; at += 50) applyChangesets(receiver, sets.slice(at, at + 50));
  const mergeMs = cpuMs() - started;
  const merged = receiver.db.prepare('SELECT count(*) AS n FROM machines').get().n;
  receiver.close();

  const plain = plainDatabase();
  plain.exec(schema);
  const statement = plain.prepare(insert);
  const batch = plain.transaction((from, to) => {
    for (let i = from; i < to; i++) statement.run(row(i));
  });
  started = cpuMs();
  for (let at = 0; at < rows; at += perTx * 50) batch(at, Math.min(rows, at + perTx * 50));
  const plainMs = cpuMs() - started;
  plain.close();
  const floorMs = layoutFloorMs(sets, perTx * 50);
  if (merged !== rows) throw new Error(`merged ${merged} rows of ${rows}`);
  return {
    rows,
    changes,
    mergedRowsPerSec: (rows / mergeMs) * 1000,
    mergedChangesPerSec: (changes / mergeMs) * 1000,
    plainRowsPerSec: (rows / plainMs) * 1000,
    floorRowsPerSec: (rows / floorMs) * 1000,
  };
}

function plainDatabase() {
  const db = new Database(join(temp(), 'plain.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  return db;
}

/**
 * A database in `dir` with the store's tables for `machines` — its data, clock and log tables and
 * their indexes, copied from a store's schema — and no triggers: where the layout floors write.
 */
export function layoutDatabase(dir) {
  const store = new Store(join(dir, 'layout-schema.db'), schema);
  const ddl = store.db
    .prepare(
      `SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND type IN ('table', 'index')
       AND (name = 'machines' OR name LIKE '__corro_clock_machines%' OR name LIKE '__corro_log_machines%')
       ORDER BY type DESC`,
    )
    .all();
  store.close();
  const db = new Database(join(dir, 'layout.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  for (const { sql } of ddl) db.exec(sql);
  return db;
}

/**
 * The floor of the general (row-by-row) merge over cr-sqlite's layout: on a plain database with our CRR tables and indexes (copied
 * from a store's schema, without triggers), exactly the statements a merge of a new row runs —
 * its sentinel, its data row, its column clocks in one statement, its version log entry — with
 * no CRDT logic at all.
 * CPU ms for all the rows of `sets`, in transactions of `perTx` rows.
 */
function layoutFloorMs(sets, perTx) {
  const db = layoutDatabase(temp());
  const sentinel = db.prepare(
    'INSERT OR IGNORE INTO "__corro_clock_machines" VALUES (?, ?, ?, ?, ?, ?, ?, 0)',
  );
  const data = db.prepare(insert);
  const clocks = db.prepare(
    `INSERT OR REPLACE INTO "__corro_clock_machines" VALUES ${Array(4).fill('(?, ?, ?, ?, ?, ?, ?, 0)').join(', ')}`,
  );
  const log = db.prepare('INSERT OR IGNORE INTO "__corro_log_machines" VALUES (1, ?, ?)');
  const rows = sets.flatMap((set) => {
    const byRow = [];
    for (let at = 0; at < set.changes.length; at += 5) byRow.push(set.changes.slice(at, at + 5));
    return byRow;
  });
  const batch = db.transaction((from, to) => {
    for (let i = from; i < to; i++) {
      const key = `m-${i}`;
      const [first, ...columns] = rows[i];
      sentinel.run(key, first.cid, 1, first.db_version, 1, first.seq, first.ts);
      data.run(row(i));
      clocks.run(
        ...columns.flatMap((change) => [
          key,
          change.cid,
          1,
          change.db_version,
          1,
          change.seq,
          change.ts,
        ]),
      );
      log.run(rows[i][0].db_version, key);
    }
  });
  const started = cpuMs();
  for (let at = 0; at < rows.length; at += perTx) batch(at, Math.min(rows.length, at + perTx));
  const spent = cpuMs() - started;
  db.close();
  return spent;
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(measureApply());
