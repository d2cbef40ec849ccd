import { join } from 'node:path';
import type { Change } from '../src/crdt/changes.js';
import { applyChangesets } from '../src/replication/apply.js';
import type { Changeset } from '../src/replication/codec.js';
import { versionChangesets } from '../src/replication/serve.js';
import { Store } from '../src/store.js';
import { tempDir } from './agent.js';

export const machinesSchema = `CREATE TABLE machines (
  id TEXT NOT NULL PRIMARY KEY,
  state TEXT NOT NULL DEFAULT '',
  n INTEGER,
  data BLOB
);`;

/** A store on its own SQLite file, as an agent has. */
export function openStore(schema = machinesSchema, dir = tempDir()): Store {
  return new Store(join(dir, 'corrosion.db'), schema);
}

export function exec(store: Store, sql: string, params: unknown[] = []): number | null {
  return store.transaction([{ sql, params }]).version;
}

/** Every version `from` has (its own and others'), as whole changesets. */
export function allChangesets(from: Store, maxBytes = 1 << 30): Changeset[] {
  const sets: Changeset[] = [];
  for (const site of from.bookkeeping.sites()) {
    const actorId = from.crdt.siteIdOf(site);
    for (let version = 1; version <= from.bookkeeping.head(site); version++) {
      sets.push(...(versionChangesets(from, actorId, version, maxBytes) ?? []));
    }
  }
  return sets;
}

/** Ships everything `from` has to `to`. */
export function ship(from: Store, to: Store): void {
  applyChangesets(to, allChangesets(from));
}

export function rows(store: Store, table = 'machines'): unknown[] {
  return store.db.prepare(`SELECT * FROM ${table} ORDER BY 1`).all();
}

/** The clock metadata, with site ordinals replaced by site ids so replicas compare. */
export function clocks(store: Store): Omit<Change, 'val'>[] {
  return store.db
    .prepare(
      'SELECT "table", hex(pk) AS pk, cid, col_version, db_version, hex(site_id) AS site_id, cl, seq, ts FROM crsql_changes ORDER BY 1, 2, 3',
    )
    .all() as Omit<Change, 'val'>[];
}
