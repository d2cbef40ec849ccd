// Database size and memory per 100k rows, and the clock tables' overhead as a ratio to the data,
// beside the same rows in a plain SQLite file.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Store } from '../dist/store.js';
import { insert, row, schema } from './apply.mjs';

function bytesByTable(db) {
  const sizes = db.prepare('SELECT name, sum(pgsize) AS bytes FROM dbstat GROUP BY name').all();
  return Object.fromEntries(sizes.map(({ name, bytes }) => [name, bytes]));
}

export function measureSize(rows = 100_000) {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-corrosion-size-'));
  try {
    global.gc?.();
    const before = process.memoryUsage();
    const store = new Store(join(dir, 'crdt.db'), schema);
    for (let start = 0; start < rows; start += 1000) {
      const statements = [];
      for (let i = start; i < start + 1000; i++) statements.push({ sql: insert, params: row(i) });
      store.transaction(statements);
    }
    store.db.pragma('wal_checkpoint(TRUNCATE)');
    global.gc?.();
    const after = process.memoryUsage();
    const tables = bytesByTable(store.db);
    store.close();
    const plain = new Database(join(dir, 'plain.db'));
    plain.exec(schema);
    const statement = plain.prepare(insert);
    plain.transaction(() => {
      for (let i = 0; i < rows; i++) statement.run(row(i));
    })();
    const plainTables = bytesByTable(plain);
    plain.close();
    const sum = (filter) =>
      Object.entries(tables)
        .filter(([name]) => filter(name))
        .reduce((total, [, bytes]) => total + bytes, 0);
    const data = sum((name) => name === 'machines' || name === 'sqlite_autoindex_machines_1');
    const clocks = sum(
      (name) => name.startsWith('__corro_clock_') || name.startsWith('__corro_log_'),
    );
    return {
      rows,
      fileBytes: statSync(join(dir, 'crdt.db')).size,
      plainFileBytes: statSync(join(dir, 'plain.db')).size,
      dataBytes: data,
      plainDataBytes: Object.values(plainTables).reduce((a, b) => a + b, 0),
      clockBytes: clocks,
      clockToData: clocks / data,
      rssDeltaBytes: after.rss - before.rss,
      heapDeltaBytes: after.heapUsed - before.heapUsed,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(JSON.stringify(measureSize()));
