import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Counters a fixture /proc shows: jiffies of the aggregate cpu line, bytes of one interface. */
export interface ProcCounters {
  busyJiffies: number;
  softirqJiffies: number;
  idleJiffies: number;
  receivedBytes: number;
  transmittedBytes: number;
}

/** /proc/stat text for `counters` (user holds the busy time that is not softirq). */
export function procStatText(counters: ProcCounters): string {
  const user = counters.busyJiffies - counters.softirqJiffies;
  return `cpu  ${user} 0 0 ${counters.idleJiffies} 0 0 ${counters.softirqJiffies} 0 0 0\ncpu0 ${user} 0 0 ${counters.idleJiffies} 0 0 ${counters.softirqJiffies} 0 0 0\nctxt 1\n`;
}

/** /proc/net/dev text for `counters` on eth0, beside a busy loopback that must not count. */
export function netDevText(counters: ProcCounters): string {
  const line = (name: string, rx: number, tx: number) =>
    `${name.padStart(6)}: ${rx} 1 0 0 0 0 0 0 ${tx} 1 0 0 0 0 0 0`;
  return [
    'Inter-|   Receive                                                |  Transmit',
    ' face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed',
    line('lo', counters.busyJiffies * 1_000_000, counters.busyJiffies * 1_000_000),
    line('eth0', counters.receivedBytes, counters.transmittedBytes),
    '',
  ].join('\n');
}

/** Writes both files under `root` (`stat`, `net/dev`), each replaced whole (a reader never sees half). */
export function writeProc(root: string, counters: ProcCounters): void {
  mkdirSync(join(root, 'net'), { recursive: true });
  for (const [path, text] of [
    [join(root, 'stat'), procStatText(counters)],
    [join(root, 'net', 'dev'), netDevText(counters)],
  ] as const) {
    writeFileSync(`${path}.next`, text);
    renameSync(`${path}.next`, path);
  }
}
