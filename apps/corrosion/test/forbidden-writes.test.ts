import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ServerProcess } from '@fleet/service';
import { present } from '@fleet/service/invariant';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ndjson, post, startAgent, tempDir } from './agent.js';

const schema = `
CREATE TABLE notes (id TEXT NOT NULL PRIMARY KEY, body TEXT NOT NULL DEFAULT '');
CREATE TABLE events (id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, what TEXT NOT NULL DEFAULT '');
`;

// One statement through the transactions API must not be able to break this node: everything
// but rows of the schema's tables is refused with a 400 before anything runs.
describe('what a transaction may write', () => {
  let agent: ServerProcess;
  let url: string;
  const dir = tempDir();

  beforeAll(async () => {
    writeFileSync(join(dir, 'schema.sql'), schema);
    agent = await startAgent(join(dir, 'state.db'), ['--schema', join(dir, 'schema.sql')]);
    url = present(agent.urls.api, "the agent's API url");
  });
  afterAll(async () => {
    await agent?.stop();
  });

  const transact = (statements: unknown[]) => post(`${url}/v1/transactions`, statements);
  const query = async (sql: string) =>
    (await ndjson(await post(`${url}/v1/queries`, sql))).flatMap((event) =>
      Array.isArray(event.row) ? [event.row[1]] : [],
    );

  it('refuses schema changes, internal tables, pragmas, attached files and transaction control', async () => {
    const attached = join(dir, 'attached.db');
    const refused = [
      ['DROP TABLE notes', /statement 1 writes sqlite_schema/],
      ['ALTER TABLE notes ADD COLUMN extra TEXT', /statement 1 writes sqlite_schema/],
      ['CREATE TABLE other (id INTEGER PRIMARY KEY)', /statement 1 writes sqlite_schema/],
      ['CREATE INDEX notes_body ON notes (body)', /statement 1 writes sqlite_schema/],
      ['UPDATE __corro_write SET merging = 1', /statement 1 writes __corro_write/],
      ['DELETE FROM __corro_heads', /statement 1 writes __corro_heads/],
      ['DELETE FROM __corro_clock_notes', /statement 1 writes __corro_clock_notes/],
      ['UPDATE sqlite_sequence SET seq = 0', /statement 1 writes sqlite_sequence alone/],
      [`ATTACH DATABASE '${attached}' AS elsewhere`, /statement 1 writes no table rows/],
      ['PRAGMA user_version = 7', /statement 1 writes no table rows/],
      ['VACUUM', /statement 1 writes no table rows/],
      ['SAVEPOINT inner', /statement 1 writes no table rows/],
      ['CREATE TEMP TABLE scratch (a)', /statement 1 writes a temporary or attached database/],
    ] as const;
    for (const [sql, message] of refused) {
      // A good statement first: it must not stay either.
      const response = await transact([
        ['INSERT INTO notes (id) VALUES (?)', [`before: ${sql}`]],
        sql,
      ]);
      expect(response.status, sql).toBe(400);
      const body = (await response.json()) as { results: { error: string }[]; code: string };
      expect(body, sql).toMatchObject({ version: null, code: 'CORRO_ERR_FORBIDDEN_WRITE' });
      expect(present(body.results[0], 'the error result').error, sql).toMatch(message);
    }
    expect(await query('SELECT count(*) FROM notes')).toEqual([[0]]);
    expect(await query('SELECT merging, db_version FROM __corro_write')).toEqual([[0, null]]);
    expect(await query("SELECT count(*) FROM pragma_table_info('notes')")).toEqual([[2]]);
    expect(await query('SELECT user_version FROM pragma_user_version')).toEqual([[0]]);
    expect(existsSync(attached)).toBe(false);
  });

  it('takes every kind of row write on schema tables, which then replicates (a version)', async () => {
    const written = [
      "INSERT INTO notes (id, body) VALUES ('a', 'one')",
      [
        'INSERT INTO notes (id, body) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET body = excluded.body',
        ['a', 'two'],
      ],
      "INSERT OR REPLACE INTO notes (id, body) VALUES ('b', 'three')",
      "WITH n(id) AS (VALUES ('c'), ('d')) INSERT INTO notes (id) SELECT id FROM n",
      "UPDATE notes SET body = 'x' WHERE id IN (SELECT id FROM notes WHERE body = '')",
      "INSERT INTO events (what) VALUES ('counted')",
      "DELETE FROM notes WHERE id = 'd'",
      {
        query: 'UPDATE notes SET body = :body WHERE id = :id',
        named_params: { body: 'y', id: 'b' },
      },
    ];
    for (const statement of written) {
      const response = await transact([statement]);
      expect(response.status, JSON.stringify(statement)).toBe(200);
      expect(((await response.json()) as { version: number | null }).version).not.toBeNull();
    }
    expect(await query('SELECT id, body FROM notes ORDER BY id')).toEqual([
      ['a', 'two'],
      ['b', 'y'],
      ['c', 'x'],
    ]);
    const cleared = await transact(['DELETE FROM events']); // a whole table, no WHERE
    expect(cleared.status).toBe(200);
    expect(await query('SELECT count(*) FROM events')).toEqual([[0]]);
  });

  it('answers bindings that do not fit a statement as a failing statement (500), as before', async () => {
    const response = await transact([['INSERT INTO notes (id, body) VALUES (?, ?)', ['only one']]]);
    expect(response.status).toBe(500);
    const body = (await response.json()) as { results: { error: string }[]; code: string };
    expect(body.code).toBe('CORRO_ERR_TRANSACTION_FAILED');
    expect(present(body.results[0], 'the error result').error).toMatch(/^statement 0: /);
  });
});
