// Local writes: rows written through the API's transaction path (Store.transaction: a trigger
// journals each new row, its clock and log entry are written set-wise at the end of the write,
// the version's changes are built for broadcast) per second of CPU, beside plain better-sqlite3
// inserts of the same rows, and the layout's floor: the same b-tree writes (data row, the row's
// clock keyed by its pk with its column clocks implied, its version log entry) bound from
// JavaScript with no trigger between them. CPU time, so other load on the machine counts less.
// Each contender is warmed up first, then every round runs plain right before each contender and
// gives the contender's rate as a ratio to that plain run; the figures are medians of the rounds.
// Usage: node bench/local-write.mjs [rounds=7] [perTx=100] (needs `npm run build`)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Store } from '../dist/store.js';
import { insert, layoutDatabase, row, schema } from './apply.mjs';

const rowsPerRound = 20_000;

function cpuMs() {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/** Rows per second of CPU writing `rows` rows from `first` on, `perTx` a transaction. */
function rate(first, rows, perTx, write) {
  const started = cpuMs();
  for (let at = first; at < first + rows; at += perTx)
    write(at, Math.min(first + rows, at + perTx));
  return (rows / (cpuMs() - started)) * 1000;
}

function open(path) {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  return db;
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

function ours(dir) {
  const store = new Store(join(dir, 'store.db'), schema);
  return {
    write(from, to) {
      const statements = [];
      for (let i = from; i < to; i++) statements.push({ sql: insert, params: row(i) });
      store.transaction(statements);
    },
    close() {
      const written = store.db.prepare('SELECT count(*) FROM machines').pluck().get();
      store.close();
      return written;
    },
  };
}

/** The layout's b-tree writes alone, on a database with the store's tables (no triggers). */
function floor(dir) {
  const db = layoutDatabase(dir);
  const data = db.prepare(insert);
  const clock = db.prepare(
    `INSERT INTO "__corro_clock_machines" VALUES (?, '-1', 1, ?, 0, ?, 0, 4)`,
  );
  const log = db.prepare('INSERT INTO "__corro_log_machines" VALUES (0, ?, ?)');
  let version = 0;
  const write = db.transaction((from, to) => {
    version++;
    for (let i = from; i < to; i++) {
      const values = row(i);
      data.run(values);
      clock.run(values[0], version, (i - from) * 5);
      log.run(version, values[0]);
    }
  });
  return { write, close: () => db.close() };
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/** Ours and the floor as medians of their ratios to plain, and ours in rows per second. */
export function measureLocalWrite(rounds = 7, perTx = 100) {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-corrosion-bench-'));
  try {
    const subjects = { plain: plain(dir), ours: ours(dir), floor: floor(dir) };
    for (const subject of Object.values(subjects)) rate(0, 3_000, perTx, subject.write);
    const ratios = { ours: [], floor: [] };
    const rates = { plain: [], ours: [] };
    let next = 3_000;
    const rows = perTx === 1 ? rowsPerRound / 10 : rowsPerRound;
    for (let round = 0; round < rounds; round++) {
      for (const name of ['ours', 'floor']) {
        const plainRate = rate(next, rows, perTx, subjects.plain.write);
        const theirs = rate(next, rows, perTx, subjects[name].write);
        ratios[name].push(theirs / plainRate);
        if (name === 'ours') {
          rates.plain.push(plainRate);
          rates.ours.push(theirs);
        }
        next += rows;
      }
    }
    const written = subjects.ours.close();
    subjects.plain.close();
    subjects.floor.close();
    const expected = 3_000 + rows * rounds;
    if (written !== expected) throw new Error(`wrote ${written} rows of ${expected}`);
    return {
      rounds,
      perTx,
      ours: median(ratios.ours),
      oursRange: [Math.min(...ratios.ours), Math.max(...ratios.ours)],
      floor: median(ratios.floor),
      plainRowsPerSec: median(rates.plain),
      ourRowsPerSec: median(rates.ours),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(measureLocalWrite(Number(process.argv[2] ?? 7), Number(process.argv[3] ?? 100)));
}
