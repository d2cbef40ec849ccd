import { randomBytes } from 'node:crypto';
import { copyFileSync, renameSync, rmSync } from 'node:fs';
import Database from 'better-sqlite3';
import { internalPrefix } from './schema.js';

/**
 * Puts a backup in place of `dbPath` (the agent must be stopped) under a fresh actor id: the
 * backup's own versions become those of a remote actor, so new local writes never reuse a
 * version number the cluster already knows. Sync then brings whatever the backup lacks.
 */
export function restoreBackup(backupPath: string, dbPath: string): { actorId: string } {
  const staging = `${dbPath}.restoring`;
  copyFileSync(backupPath, staging);
  const db = new Database(staging);
  const actorId = randomBytes(16).toString('hex');
  try {
    db.transaction(() => {
      const { next } = db
        .prepare(`SELECT coalesce(max(ordinal), 0) + 1 AS next FROM ${internalPrefix}sites`)
        .get() as { next: number };
      const versionedTables = (
        db
          .prepare(
            `SELECT name FROM sqlite_master WHERE type = 'table'
             AND (substr(name, 1, 14) = '__corro_clock_' OR substr(name, 1, 12) = '__corro_log_')`,
          )
          .all() as { name: string }[]
      ).map((row) => row.name);
      db.prepare(`UPDATE ${internalPrefix}sites SET ordinal = ? WHERE ordinal = 0`).run(next);
      for (const table of [
        ...versionedTables,
        `${internalPrefix}versions`,
        `${internalPrefix}heads`,
        `${internalPrefix}gaps`,
        `${internalPrefix}partials`,
        `${internalPrefix}buffered`,
      ]) {
        db.prepare(`UPDATE "${table}" SET site = ? WHERE site = 0`).run(next);
      }
      db.prepare(`INSERT INTO ${internalPrefix}sites VALUES (0, ?)`).run(
        Buffer.from(actorId, 'hex'),
      );
      db.prepare(`UPDATE ${internalPrefix}meta SET value = ? WHERE key = 'actor_id'`).run(actorId);
    })();
  } finally {
    db.close();
  }
  for (const suffix of ['', '-wal', '-shm']) rmSync(`${dbPath}${suffix}`, { force: true });
  renameSync(staging, dbPath);
  return { actorId };
}
