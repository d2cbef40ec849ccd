import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** What the watchdog knew when it gave up on a proxy, written beside the proxy's own report. */
export interface IncidentFacts {
  reason: 'unanswered' | 'exited';
  pid: number;
  at: string;
  /** How long the control channel had not answered (unanswered), or the exit (exited). */
  silentMs?: number;
  exit?: { code: number | null; signal: string | null };
  /** The last `locks` answer: who held and who waited on the catalog lock. */
  locks: unknown;
  locksAt: string | null;
  restarts: number;
}

/** Incidents kept in `<state-dir>/incidents`; older ones are removed. */
export const incidentsMax = 20;
const reportPollMs = 50;

/**
 * Writes `<state-dir>/incidents/<time>-<pid>/`: `incident.json` (the facts, and the report's name
 * or why there is none), `locks.json` (the last lock snapshot), `log-tail.txt` (recent output)
 * and, when the proxy wrote one, its Node diagnostic report. Returns the directory.
 */
export async function recordIncident(options: {
  stateDir: string;
  reportDir: string;
  facts: IncidentFacts;
  logTail: string;
  /** Wait this long for the proxy's report (0: none was asked). */
  reportWaitMs: number;
}): Promise<string> {
  const incidents = join(options.stateDir, 'incidents');
  const { facts } = options;
  const dir = join(incidents, `${facts.at.replace(/[:.]/g, '-')}-${facts.pid}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'locks.json'), `${JSON.stringify(facts.locks, null, 2)}\n`);
  writeFileSync(join(dir, 'log-tail.txt'), options.logTail);
  const report = await takeReport(options.reportDir, facts.pid, dir, options.reportWaitMs);
  const missing =
    options.reportWaitMs === 0
      ? 'no report asked (the proxy exited by itself)'
      : `the proxy wrote no report within ${options.reportWaitMs} ms (an event loop that never yields cannot run the report's signal handler)`;
  const incident = {
    ...facts,
    report: report ?? null,
    ...(report ? {} : { reportMissing: missing }),
  };
  writeFileSync(join(dir, 'incident.json'), `${JSON.stringify(incident, null, 2)}\n`);
  prune(incidents);
  return dir;
}

/**
 * Waits (bounded) for a complete report of `pid` in `reportDir` — Node names it
 * `report.<date>.<time>.<pid>.<seq>.json` and writes it in steps, so it counts once it parses —
 * and moves it into the incident directory. Returns its file name.
 */
async function takeReport(
  reportDir: string,
  pid: number,
  dir: string,
  waitMs: number,
): Promise<string | undefined> {
  const deadline = Date.now() + waitMs;
  while (waitMs > 0) {
    const name = readdirSafe(reportDir).find(
      (file) => file.includes(`.${pid}.`) && file.endsWith('.json'),
    );
    if (name !== undefined && parses(join(reportDir, name))) {
      renameSync(join(reportDir, name), join(dir, name));
      return name;
    }
    if (Date.now() >= deadline) return undefined;
    await sleep(reportPollMs);
  }
  return undefined;
}

function parses(path: string): boolean {
  try {
    JSON.parse(readFileSync(path, 'utf8'));
    return true;
  } catch {
    return false;
  }
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Keeps the newest `incidentsMax` incidents (their names start with the time). */
function prune(incidents: string): void {
  const all = readdirSafe(incidents).sort();
  for (const old of all.slice(0, Math.max(0, all.length - incidentsMax))) {
    rmSync(join(incidents, old), { recursive: true, force: true });
  }
}

/**
 * Reports left in `<state-dir>/reports` (an operator's own `kill -USR2`, or one that came too late
 * for its incident) are kept, the newest `incidentsMax` of them (Node names them by time).
 */
export function pruneReports(reportDir: string): void {
  prune(reportDir);
}
