import { existsSync, rmSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { corroError, SchemaError } from '../errors.js';
import type { Store } from '../store.js';

/**
 * `POST /v1/table_stats` (row counts, Corrosion's shape), `POST /v1/migrations` (schema reload:
 * the agent re-reads its schema files, the only source of the schema, so a restart agrees) and
 * `POST /v1/backup` (a consistent copy of the database to a new file, by absolute path on the
 * agent's host).
 */
export function adminRoutes(app: FastifyInstance, store: Store, readSchema: () => string): void {
  app.post<{ Body: { tables?: unknown } }>('/v1/table_stats', async (request) => {
    const tables = request.body?.tables;
    if (!Array.isArray(tables) || tables.some((table) => typeof table !== 'string')) {
      throw corroError('CORRO_ERR_BAD_STATEMENT', 'body must be {"tables": ["name", ...]}');
    }
    const known = new Set(store.tableNames());
    let total = 0;
    const invalid: string[] = [];
    for (const table of tables as string[]) {
      if (!known.has(table)) {
        invalid.push(table);
        continue;
      }
      total += (store.db.prepare(`SELECT count(*) AS n FROM "${table}"`).get() as { n: number }).n;
    }
    return { total_row_count: total, invalid_tables: invalid };
  });

  app.post('/v1/migrations', async (request) => {
    if (request.body !== undefined && request.body !== null) {
      throw corroError(
        'CORRO_ERR_BAD_STATEMENT',
        "the schema comes from the agent's --schema files: edit them and POST with no body",
      );
    }
    try {
      return { tables: store.reloadSchema(readSchema()) };
    } catch (error) {
      if (error instanceof SchemaError) throw corroError('CORRO_ERR_SCHEMA_REFUSED', error.message);
      throw error;
    }
  });

  app.post<{ Body: { path?: unknown } }>('/v1/backup', async (request) => {
    const path = request.body?.path;
    if (typeof path !== 'string' || path === '') {
      throw corroError('CORRO_ERR_BAD_STATEMENT', 'body must be {"path": "/where/backup.db"}');
    }
    // A relative path would land wherever the agent was started; an existing file (the agent's
    // own database among them) would be written over.
    if (!isAbsolute(path)) {
      throw corroError(
        'CORRO_ERR_BACKUP',
        `the backup path ${path} is not absolute (a path on the agent's host)`,
      );
    }
    if (existsSync(path)) {
      throw corroError(
        'CORRO_ERR_BACKUP',
        `${path} exists: a backup goes to a new file, never over one`,
      );
    }
    try {
      await store.backup(path);
    } catch (error) {
      rmSync(path, { force: true }); // what a failed copy left (the path was free before)
      throw corroError(
        'CORRO_ERR_BACKUP',
        `cannot write a backup to ${path}: ${(error as Error).message}`,
      );
    }
    return { path, version: store.version, actor_id: store.actorId };
  });
}
