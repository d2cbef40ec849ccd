// Issue 14's local-write target against the design that writes the fewest b-tree entries a
// complete CRDT layer needs (the README's "Local writes, fifth pass"), built as a contender beside
// today's API path and plain inserts in the same run: not a store, the least one could cost.
// A fresh row writes its data row and pk index, its clock in a table keyed by the pk (no column
// clocks: a fresh row's are implied by its causal length 1), and a log entry keyed by version and
// pk: 4 entries against plain's 2. A TEMP trigger journals each inserted key that has no clock,
// once (the journal's UNIQUE index ignores a second: one lookup fewer than asking it first); a key
// with a clock, and every update and delete, would take the row-by-row path after flushing the
// journal, not on this bench's path;
// at the end of the write two `INSERT … SELECT` write the clocks and log entries from the journal
// (seqs from its order), the rows are read back into the changes broadcast would send, and a
// main-schema trigger refuses writes made outside the agent's transactions. Around it, the API
// path's JavaScript: a statement cache, each statement timed, its result kept.
// Usage: node bench/fewest-entries.mjs [runs=5] [rounds=5] (needs `npm run build`)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { packColumns } from '../dist/crdt/pack.js';
import { freshChange } from '../dist/crdt/version-read.js';
import { Store } from '../dist/store.js';
import { insert, row, schema } from './apply.mjs';

const rowsPerRound = 20_000;
const perTx = 100;
const columns = ['app', 'state', 'region', 'updated_at'];
const siteId = Buffer.alloc(16, 7);

function cpuMs() {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

function open(path) {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  return db;
}

/** Rows per second of CPU writing `rows` rows from `first` on, `perTx` a transaction. */
function rate(first, rows, write) {
  const started = cpuMs();
  for (let at = first; at < first + rows; at += perTx) write(at, at + perTx);
  return (rows / (cpuMs() - started)) * 1000;
}

function plain(dir) {
  const db = open(join(dir, 'plain.db'));
  db.exec(schema);
  const statement = db.prepare(insert);
  const write = db.transaction((from, to) => {
    for (let i = from; i < to; i++) statement.run(row(i));
  });
  return { write, close: () => db.close() };
}

function todays(dir) {
  const store = new Store(join(dir, 'store.db'), schema);
  return {
    write(from, to) {
      const statements = [];
      for (let i = from; i < to; i++) statements.push({ sql: insert, params: row(i) });
      store.transaction(statements);
    },
    close: () => store.close(),
  };
}

function fewest(dir) {
  const db = open(join(dir, 'fewest.db'));
  db.exec(schema);
  db.exec(`
    CREATE TABLE __clock_machines (id TEXT NOT NULL PRIMARY KEY, cl INTEGER NOT NULL,
      db_version INTEGER NOT NULL, seq INTEGER NOT NULL, site INTEGER NOT NULL) WITHOUT ROWID;
    CREATE TABLE __log_machines (db_version INTEGER NOT NULL, id TEXT NOT NULL,
      PRIMARY KEY (db_version, id)) WITHOUT ROWID;
    CREATE TABLE __writing (on_ INTEGER NOT NULL);
    INSERT INTO __writing VALUES (0);
    CREATE TABLE __bookkeeping (site INTEGER NOT NULL, version INTEGER NOT NULL,
      last_seq INTEGER NOT NULL, ts INTEGER NOT NULL, PRIMARY KEY (site, version)) WITHOUT ROWID;
    CREATE TRIGGER __guard_machines BEFORE INSERT ON machines
      WHEN (SELECT on_ FROM __writing) = 0
      BEGIN SELECT RAISE(ABORT, 'machines is written through the agent'); END;
    CREATE TEMP TABLE __journal (id TEXT NOT NULL UNIQUE);
    CREATE TEMP TRIGGER __journal_machines AFTER INSERT ON main.machines
      WHEN NOT EXISTS (SELECT 1 FROM main.__clock_machines WHERE id = NEW.id)
      BEGIN INSERT OR IGNORE INTO temp.__journal (id) VALUES (NEW.id); END;
  `);
  const writing = db.prepare('UPDATE __writing SET on_ = ?');
  const base = db.prepare('SELECT coalesce(min(rowid), 1) AS base FROM temp.__journal').pluck();
  const clocks = db.prepare(
    `INSERT INTO __clock_machines (id, cl, db_version, seq, site)
     SELECT id, 1, ?, (rowid - ?) * ${columns.length + 1}, 0 FROM temp.__journal`,
  );
  const logs = db.prepare('INSERT INTO __log_machines SELECT ?, id FROM temp.__journal');
  const written = db
    .prepare(
      `SELECT j.rowid - ? AS at, m.id, ${columns.map((c) => `m.${c}`).join(', ')}
       FROM temp.__journal j JOIN machines m ON m.id = j.id ORDER BY j.rowid`,
    )
    .raw();
  const clear = db.prepare('DELETE FROM temp.__journal');
  const complete = db.prepare('INSERT INTO __bookkeeping VALUES (0, ?, ?, ?)');
  const cache = new Map();
  let version = 0;
  const transaction = db.transaction((statements) => {
    writing.run(1);
    const results = statements.map(({ sql, params }) => {
      let compiled = cache.get(sql);
      if (compiled === undefined) {
        compiled = db.prepare(sql);
        cache.set(sql, compiled);
      }
      const started = performance.now();
      const info = compiled.run(params);
      return { rows_affected: info.changes, time: (performance.now() - started) / 1000 };
    });
    writing.run(0);
    version += 1;
    const ts = Date.now();
    const first = base.get();
    clocks.run(version, first);
    logs.run(version);
    const changes = [];
    const rows = [];
    for (const [at, id, ...values] of written.all(first)) {
      const pk = packColumns([id]);
      const seq = at * (columns.length + 1);
      rows.push({ table: 'machines', pk: [id], deleted: false });
      changes.push(freshChange('machines', pk, '-1', null, version, siteId, seq, ts));
      for (let c = 0; c < columns.length; c++)
        changes.push(
          freshChange('machines', pk, columns[c], values[c], version, siteId, seq + c + 1, ts),
        );
    }
    clear.run();
    complete.run(version, changes.length - 1, ts);
    return { results, version, changes, rows };
  });
  return {
    write(from, to) {
      const statements = [];
      for (let i = from; i < to; i++) statements.push({ sql: insert, params: row(i) });
      transaction(statements);
    },
    check(rows) {
      const count = (table) => db.prepare(`SELECT count(*) FROM ${table}`).pluck().get();
      for (const table of ['machines', '__clock_machines', '__log_machines'])
        if (count(table) !== rows) throw new Error(`${table}: ${count(table)} rows, not ${rows}`);
      let refused = false;
      const outside = open(join(dir, 'fewest.db'));
      try {
        outside.prepare(insert).run(row(-1));
      } catch {
        refused = true;
      }
      outside.close();
      if (!refused) throw new Error('a write outside the agent was not refused');
    },
    close: () => db.close(),
  };
}

/** One run: each contender warmed up, then `rounds` rounds, each contender right after plain. */
function run(rounds) {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-corrosion-bench-'));
  try {
    const subjects = { plain: plain(dir), todays: todays(dir), fewest: fewest(dir) };
    for (const subject of Object.values(subjects)) rate(0, 3_000, subject.write);
    const ratios = { todays: [], fewest: [] };
    let next = 3_000;
    for (let round = 0; round < rounds; round++) {
      for (const name of ['todays', 'fewest']) {
        const plainRate = rate(next, rowsPerRound, subjects.plain.write);
        ratios[name].push(rate(next, rowsPerRound, subjects[name].write) / plainRate);
        next += rowsPerRound;
      }
    }
    subjects.fewest.check(3_000 + rowsPerRound * rounds);
    for (const subject of Object.values(subjects)) subject.close();
    return ratios;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/** Today's API path and the fewest-entries design, each as the median of its ratios to plain. */
export function measureFewestEntries(rounds = 5) {
  const { todays: today, fewest: least } = run(rounds);
  return { todays: median(today), fewest: median(least) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const runs = Number(process.argv[2] ?? 5);
  const rounds = Number(process.argv[3] ?? 5);
  console.log(
    `local writes / plain inserts, median of ${rounds} rounds per run (issue 14: >= 0.4)`,
  );
  for (let i = 0; i < runs; i++) {
    const { todays, fewest } = measureFewestEntries(rounds);
    console.log(
      `run ${i + 1}: today's API path ${todays.toFixed(3)}, fewest entries (complete) ${fewest.toFixed(3)}`,
    );
  }
}
