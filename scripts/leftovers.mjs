#!/usr/bin/env node
// What the test suite left behind, checked by `.ci/run` after the tests (issue 10: a crash test
// once left three flyd processes running and every run left ~150 MB of temporary directories).
//
//   node scripts/leftovers.mjs <tmp-dir> <repo-root>
//
// <tmp-dir> is the TMPDIR the suite ran with, empty before it: anything still in it was made by a
// test and not removed. A leftover process is one still running whose working directory or
// command line lies under <tmp-dir> or <repo-root> (servers, their machines, vitest workers), or
// whose environment names a path under <tmp-dir> (a machine's HOME is its root: its working
// directory reads `/` once its root's disk was lazily unmounted), other than this script's own
// ancestors. A leftover mount is a filesystem still mounted under
// either (a flyd's volume disk, loop-mounted). Prints each and exits 1 if there is any.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { mountsUnder, procStat } from '@fleet/service';

const [tmpDir, repoRoot] = process.argv.slice(2).map((path) => resolve(path));
if (!tmpDir || !repoRoot) {
  console.error('usage: leftovers.mjs <tmp-dir> <repo-root>');
  process.exit(2);
}

function ancestors() {
  const pids = new Set();
  for (let pid = process.pid; pid > 1; ) {
    pids.add(pid);
    pid = procStat(pid)?.ppid ?? 0;
  }
  return pids;
}

function under(path, root) {
  return path === root || path.startsWith(`${root}/`);
}

function leftProcesses() {
  const mine = ancestors();
  const left = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || mine.has(pid)) continue;
    try {
      const cwd = readlinkSync(`/proc/${pid}/cwd`);
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
      const named = argv.some((arg) => under(arg, tmpDir) || arg.includes(`${repoRoot}/`));
      const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      // A variable naming a path strictly under <tmp-dir> (a machine's HOME is its root), not
      // <tmp-dir> itself: every process of the run has that as TMPDIR (a daemon turbo left, say).
      const environUnderTmp = environ.some((pair) =>
        pair.slice(pair.indexOf('=') + 1).startsWith(`${tmpDir}/`),
      );
      if (under(cwd, tmpDir) || under(cwd, repoRoot) || named || environUnderTmp) {
        left.push(`pid ${pid} (cwd ${cwd}): ${argv.join(' ').slice(0, 200)}`);
      }
    } catch {
      // Gone meanwhile, or not ours to read: neither is a leftover of this run.
    }
  }
  return left;
}

const mounts = [...mountsUnder(tmpDir), ...mountsUnder(repoRoot)];
const files = readdirSync(tmpDir).map((name) => join(tmpDir, name));
const processes = leftProcesses();
for (const path of mounts) console.log(`still mounted: ${path}`);
for (const file of files) console.log(`left behind: ${file}`);
for (const line of processes) console.log(`still running: ${line}`);
console.log(
  `leftovers: ${processes.length} processes, ${files.length} temporary files or directories, ${mounts.length} mounts`,
);
process.exit(files.length + processes.length + mounts.length > 0 ? 1 : 0);
