import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { procStat, unmountUnder } from '@fleet/service';
import { present } from '@fleet/service/invariant';
import { ipQuiet, listNamespaces, removeNamespace } from './netns.js';

/**
 * Every namespace and link a harness run creates carries its run id, and the run is recorded in
 * `/run/fleet-harness/<run>.json` with the launcher's pid and start time. A run whose launcher is
 * gone (kill -9, a crash) is a dead run: the next start removes what it left and says so.
 */
export const runsDir = '/run/fleet-harness';

export const namespacePrefix = (runId: string) => `fleet-${runId}-`;
/** A host's namespace; host ids cannot contain a dot, so the router's cannot clash. */
export const hostNamespace = (runId: string, hostId: string) => `fleet-${runId}-${hostId}`;
export const routerNamespace = (runId: string) => `fleet-${runId}-.wan`;
/** The access link's end in the root namespace (interface names are at most 15 bytes). */
export const accessLink = (runId: string) => `flt${runId}`;

export interface RunRecord {
  runId: string;
  pid: number;
  startTime: string;
  stateDir: string;
}

export const newRunId = () => randomBytes(3).toString('hex');

export function recordRun(runId: string, stateDir: string): RunRecord {
  mkdirSync(runsDir, { recursive: true });
  const record = {
    runId,
    pid: process.pid,
    startTime: present(procStat(process.pid), 'this process /proc stat').startTime,
    stateDir,
  };
  writeFileSync(join(runsDir, `${runId}.json`), `${JSON.stringify(record)}\n`);
  return record;
}

export function forgetRun(runId: string): void {
  rmSync(join(runsDir, `${runId}.json`), { force: true });
}

function readRecord(runId: string): RunRecord | undefined {
  try {
    return JSON.parse(readFileSync(join(runsDir, `${runId}.json`), 'utf8')) as RunRecord;
  } catch {
    return undefined;
  }
}

const isLive = (record: RunRecord | undefined): record is RunRecord =>
  record !== undefined && procStat(record.pid)?.startTime === record.startTime;

/** A live run already owns the harness's address range: one run per machine at a time. */
export class HarnessBusyError extends Error {
  readonly code = 'WAN_ERR_BUSY';
  constructor(readonly record: RunRecord) {
    super(
      `another fleet harness run (${record.runId}, pid ${record.pid}, state ${record.stateDir}) is using 198.18.0.0/15 on this machine: stop it first`,
    );
  }
}

/**
 * Removes everything dead runs left (their processes, namespaces, access link, record) and
 * returns one line per run removed; throws `HarnessBusyError` when a live run exists.
 */
export async function removeDeadRuns(): Promise<string[]> {
  const runIds = new Set<string>();
  for (const name of await listNamespaces()) {
    const runId = /^fleet-([0-9a-f]{6})-/.exec(name)?.[1];
    if (runId) runIds.add(runId);
  }
  let recorded: string[] = [];
  try {
    recorded = readdirSync(runsDir).filter((file) => file.endsWith('.json'));
  } catch {
    // no runs directory yet
  }
  for (const file of recorded) runIds.add(file.slice(0, -'.json'.length));
  const removed: string[] = [];
  for (const runId of runIds) {
    const record = readRecord(runId);
    if (isLive(record)) throw new HarnessBusyError(record);
    removed.push(await removeRun(runId, record));
  }
  return removed;
}

/**
 * Kills the processes of a run's namespaces and removes the namespaces and its access link, and
 * unmounts the disks its flyds kept mounted in its state directory.
 */
export async function removeRun(runId: string, record?: RunRecord): Promise<string> {
  const namespaces = (await listNamespaces()).filter((name) =>
    name.startsWith(namespacePrefix(runId)),
  );
  for (const name of namespaces) await removeNamespace(name);
  if (record) unmountUnder(record.stateDir);
  await ipQuiet('link', 'delete', accessLink(runId));
  forgetRun(runId);
  return `removed what fleet harness run ${runId}${record ? ` (pid ${record.pid}, gone)` : ''} left: ${namespaces.length} namespaces and their processes, its links`;
}
