import { join } from 'node:path';
import { createLogger } from '@fleet/service';
import type { Database as Db } from 'better-sqlite3';
import { openDatabase } from '../src/db.js';
import { type EngineOptions, FsmEngine } from '../src/fsm/engine.js';
import { tempDir } from './temp-dirs.js';

export const silentLogger = createLogger('test');
silentLogger.level = 'silent';

/** A fresh flyd.db path in its own temporary folder (removed when the test file ends). */
export function freshDbPath(): string {
  return join(tempDir('fleet-fsm-'), 'f.db');
}

/** An engine on a real SQLite file (a second call on the same path is "flyd after a restart"). */
export function engineAt(
  path: string,
  options: Partial<EngineOptions> = {},
): { db: Db; engine: FsmEngine } {
  const db = openDatabase(path);
  return { db, engine: new FsmEngine(db, silentLogger, options) };
}

/** A promise with its resolve, to hold a step open until the test lets it go. */
export function gate(): { promise: Promise<void>; open(): void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}
