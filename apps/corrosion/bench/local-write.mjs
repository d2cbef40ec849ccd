// Local writes: rows written through the API's transaction path (Store.transaction: a trigger
// journals each new row, its clock and log entry are written at the end of the write, the
// version's changes are built for broadcast) per second, beside plain better-sqlite3 inserts of
// the same rows in the same run, and the layout's floor: the same b-tree writes (data row, the
// row's clock keyed by its pk with its column clocks implied, its version log entry) bound from
// JavaScript with no trigger between them. CPU time, so other load on the machine counts less.
// Each is run once on a throwaway database first, so no one of them pays the JIT's warm-up.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Store } from '../dist/store.js';
import { insert, row, schema } from './apply.mjs';

function cpuMs() {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

function timed(rows, perTx, write) {
  const started = cpuMs();
  for (let at = 0; at < rows; at += perTx) write(at, Math.min(rows, at + perTx));
  return (rows / (cpuMs() - started)) * 1000;
}

function plainDatabase(dir) {
  const db = new Database(join(dir, 'plain.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  return db;
}

export function measureLocalWrite(rows = 30_000, perTx = 100) {
  measureOnce(Math.min(rows, 3_000), perTx);
  return measureOnce(rows, perTx);
}

function measureOnce(rows, perTx) {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-corrosion-bench-'));
  try {
    const plain = plainDatabase(dir);
    plain.exec(schema);
    const statement = plain.prepare(insert);
    const plainTx = plain.transaction((from, to) => {
      for (let i = from; i < to; i++) statement.run(row(i));
    });
    const plainRowsPerSec = timed(rows, perTx, plainTx);
    plain.close();

    const store = new Store(join(dir, 'store.db'), schema);
    const ourRowsPerSec = timed(rows, perTx, (from, to) => {
      const statements = [];
      for (let i = from; i < to; i++) statements.push({ sql: insert, params: row(i) });
      store.transaction(statements);
    });
    const ddl = store.db
      .prepare(
        `SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND type IN ('table', 'index')
         AND (name = 'machines' OR name LIKE '__corro_clock_machines%' OR name LIKE '__corro_log_machines%')
         ORDER BY type DESC`,
      )
      .all();
    const written = store.db.prepare('SELECT count(*) AS n FROM machines').get().n;
    store.close();
    if (written !== rows) throw new Error(`wrote ${written} rows of ${rows}`);

    const floor = new Database(join(dir, 'floor.db'));
    floor.pragma('journal_mode = WAL');
    floor.pragma('synchronous = NORMAL');
    for (const { sql } of ddl) floor.exec(sql);
    const data = floor.prepare(insert);
    const clock = floor.prepare(
      `INSERT INTO "__corro_clock_machines" VALUES (?, '-1', 1, ?, 0, ?, 0, 4)`,
    );
    const log = floor.prepare('INSERT INTO "__corro_log_machines" VALUES (0, ?, ?)');
    let version = 0;
    const floorTx = floor.transaction((from, to) => {
      version++;
      for (let i = from; i < to; i++) {
        const values = row(i);
        data.run(values);
        clock.run(values[0], version, (i - from) * 5);
        log.run(version, values[0]);
      }
    });
    const floorRowsPerSec = timed(rows, perTx, floorTx);
    floor.close();
    return { rows, perTx, plainRowsPerSec, ourRowsPerSec, floorRowsPerSec };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(measureLocalWrite());
