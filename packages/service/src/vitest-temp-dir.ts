import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unmountUnder } from './mounts.js';

/**
 * A vitest `globalSetup`: the run's tests, and every server they start (they inherit the
 * environment), make their temporary files under one directory of the run's own, which is
 * removed when the run ends, passed or failed — so no fixture's directory outlives the suite,
 * even one a crashing test never reached the cleanup of. Processes are not covered: a test must
 * stop what it started (`.ci/run` lists any left running). Other users may pass through it (not
 * list it): a flyd run as root starts machines as users of their own, which reach their roots
 * and volumes under it by absolute paths.
 */
export default function setup(): () => void {
  const previous = process.env.TMPDIR;
  const dir = mkdtempSync(join(tmpdir(), 'fleet-test-run-'));
  chmodSync(dir, 0o711);
  process.env.TMPDIR = dir;
  return () => {
    if (previous === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = previous;
    unmountUnder(dir); // volumes a killed flyd left mounted (flyd's volume disks)
    rmSync(dir, { recursive: true, force: true });
  };
}
