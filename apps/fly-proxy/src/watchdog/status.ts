import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Supervisor } from './supervisor.js';

export const statusFileName = 'watchdog.json';

/** Rewrites `<state-dir>/watchdog.json` (aside and renamed: a reader never sees half of it). */
export function writeStatusFile(
  stateDir: string,
  supervisor: Supervisor,
  watchdogPid: number,
): void {
  const path = join(stateDir, statusFileName);
  const temporary = `${path}.${watchdogPid}.tmp`;
  const status = { watchdogPid, updatedAt: new Date().toISOString(), ...supervisor.status() };
  writeFileSync(temporary, `${JSON.stringify(status, null, 2)}\n`);
  renameSync(temporary, path);
}
