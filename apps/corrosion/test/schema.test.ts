import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { errorCodesInReadme } from '@fleet/service';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { CorrosionErrors, ProtocolErrors, SchemaError } from '../src/errors.js';
import { applySchema } from '../src/schema.js';
import { mainJs, tempDir } from './agent.js';

const base = "CREATE TABLE t (id TEXT NOT NULL PRIMARY KEY, v TEXT NOT NULL DEFAULT '');";

// Schema files follow Corrosion's rules; reloads add what is new and refuse what would destroy.
describe('schema', () => {
  it("refuses tables that break Corrosion's rules", () => {
    const refused: [string, RegExp][] = [
      ['CREATE TABLE t (id TEXT, v TEXT);', /no primary key/],
      ['CREATE TABLE t (id TEXT PRIMARY KEY);', /must be NOT NULL/],
      ['CREATE TABLE t (id TEXT NOT NULL PRIMARY KEY, v TEXT NOT NULL);', /needs a DEFAULT/],
      [`${base} CREATE UNIQUE INDEX tv ON t (v);`, /unique index/],
      [
        `${base} CREATE TABLE u (id TEXT NOT NULL PRIMARY KEY, t TEXT REFERENCES t(id));`,
        /foreign keys/,
      ],
      ['CREATE TABLE t (', /does not parse/],
    ];
    for (const [sql, message] of refused) {
      expect(() => applySchema(new Database(':memory:'), sql)).toThrow(message);
    }
  });

  it('adds new tables, columns and indexes, and refuses dropping', () => {
    const db = new Database(':memory:');
    applySchema(db, base);
    db.prepare("INSERT INTO t (id, v) VALUES ('a', 'b')").run();
    applySchema(
      db,
      `CREATE TABLE t (id TEXT NOT NULL PRIMARY KEY, v TEXT NOT NULL DEFAULT '', w INTEGER NOT NULL DEFAULT 7);
      CREATE INDEX tw ON t (w); CREATE TABLE u (id INTEGER NOT NULL PRIMARY KEY);`,
    );
    expect(db.prepare('SELECT * FROM t').get()).toEqual({ id: 'a', v: 'b', w: 7 });
    expect(
      db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'tw'").get(),
    ).toBeTruthy();
    expect(() => applySchema(db, base)).toThrow(SchemaError);
    expect(db.prepare('SELECT * FROM t').get()).toEqual({ id: 'a', v: 'b', w: 7 });
  });

  it('the agent exits 2 with the reason when its schema is refused', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'bad.sql'), 'CREATE TABLE t (id TEXT, v TEXT);');
    const run = spawnSync(
      process.execPath,
      [mainJs, 'agent', '--db', join(dir, 'x.db'), '--schema', join(dir, 'bad.sql')],
      {
        encoding: 'utf8',
      },
    );
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/schema refused: table t has no primary key/);
  });
});

// The CLI explains itself and rejects bad flags with exit status 2.
describe('corrosion CLI', () => {
  it('prints help and rejects unknown flags and commands', () => {
    const help = spawnSync(process.execPath, [mainJs, 'agent', '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('--api-addr');
    const bad = spawnSync(process.execPath, [mainJs, 'agent', '--db', 'x', '--nope'], {
      encoding: 'utf8',
    });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--nope');
    const unknown = spawnSync(process.execPath, [mainJs, 'frobnicate'], { encoding: 'utf8' });
    expect(unknown.status).toBe(2);
  });
});

// The README's error table and the registries in src/errors.ts (the API's and the protocols')
// list the same codes.
describe('error codes', () => {
  it('are documented', () => {
    expect(errorCodesInReadme(join(dirname(mainJs), '..', 'README.md')).sort()).toEqual(
      [...Object.keys(CorrosionErrors), ...Object.keys(ProtocolErrors)].sort(),
    );
  });
});
