/**
 * A query process (see QueryProcesses): answers the agent's `/v1/queries` on a read-only
 * connection of its own, so a query that takes long, or never ends (a recursive CTE without a
 * bound), holds this process and not the agent's event loop. One query at a time; the answer goes
 * back as NDJSON text in pieces. Started by the agent with the database's path; ends when the
 * agent goes (its IPC channel closes).
 */
import Database, { type Statement } from 'better-sqlite3';
import { packColumns, type SqlValue } from '../crdt/pack.js';
import { jsonValues } from '../crdt/values.js';
import type { QueryAnswer, QueryRequest } from './messages.js';

/** Text gathered before a piece is sent to the agent. */
const pieceChars = 64 * 1024;
/** Rows between two looks at the clock. */
const clockEvery = 256;
/** Compiled statements kept, as the store keeps them. */
const statementsMax = 500;

const path = process.argv[2];
if (path === undefined || process.send === undefined) {
  process.stderr.write(
    'a query process is started by the corrosion agent, with the database path\n',
  );
  process.exit(2);
}
const send = (answer: QueryAnswer) => process.send?.(answer);
const db = new Database(path, { readonly: true, fileMustExist: true });
db.pragma('busy_timeout = 5000');
db.pragma('temp_store = MEMORY');
// `crsql_changes` packs primary keys with it, as on the agent's own connection.
db.function('corro_pack', { varargs: true, deterministic: true }, (...values: unknown[]) =>
  packColumns(values as SqlValue[]),
);
const statements = new Map<string, Statement>();

process.on('disconnect', () => process.exit(0));
process.on('message', (request: QueryRequest) => run(request));
send({ ready: true });

function compiled(sql: string): Statement {
  let statement = statements.get(sql);
  if (statement === undefined) {
    statement = db.prepare(sql);
    if (statements.size >= statementsMax) statements.clear();
    statements.set(sql, statement);
  }
  return statement;
}

function run({ id, sql, params, limits }: QueryRequest): void {
  const started = performance.now();
  let text = '';
  let bytes = 0;
  const line = (event: unknown) => {
    const one = `${JSON.stringify(event)}\n`;
    bytes += Buffer.byteLength(one);
    text += one;
    if (text.length >= pieceChars) {
      send({ id, text });
      text = '';
    }
  };
  let rowid = 0;
  let cut: string | undefined;
  try {
    const statement = compiled(sql);
    statement.raw(true);
    line({ columns: statement.columns().map((column) => column.name) });
    for (const row of statement.iterate(params) as IterableIterator<unknown[]>) {
      line({ row: [++rowid, jsonValues(row)] });
      if (rowid >= limits.rowsMax) cut = `more than ${limits.rowsMax} rows (--query-rows-max)`;
      else if (bytes > limits.bytesMax)
        cut = `more than ${limits.bytesMax} bytes (--query-bytes-max)`;
      else if (rowid % clockEvery === 0 && performance.now() - started > limits.timeMs)
        cut = `longer than ${limits.timeMs} ms (--query-time-ms)`;
      if (cut) break; // leaving the loop closes the iterator
    }
  } catch (error) {
    send({
      id,
      text: `${text}${JSON.stringify({ error: (error as Error).message })}\n`,
      end: 'error',
    });
    return;
  }
  if (cut) {
    const error = `query stopped after ${rowid} rows: ${cut}`;
    send({ id, text: `${text}${JSON.stringify({ error })}\n`, end: 'cut' });
    return;
  }
  const eoq = { eoq: { time: (performance.now() - started) / 1000 } };
  send({ id, text: `${text}${JSON.stringify(eoq)}\n`, end: 'ok' });
}
