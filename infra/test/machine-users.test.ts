import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { localMachineUsers } from '../src/machine-users.js';

const root = process.getuid?.() === 0;

// flyd as root refuses to run machines as root unasked (`--machine-users auto` with a closed
// folder above its data directory). A local fleet asks for it then, and says so with the fix.
describe('a local fleet’s machine users', () => {
  const made: string[] = [];
  afterEach(() => {
    vi.restoreAllMocks();
    for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  const stateDir = (mode: number) => {
    const dir = mkdtempSync(join(tmpdir(), 'fleet-users-'));
    made.push(dir);
    chmodSync(dir, mode);
    return dir;
  };

  it.runIf(root)('are flyd’s own choice where other users can pass through', () => {
    const warned = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    expect(localMachineUsers(join(stateDir(0o711), 'w1', 'flyd'))).toEqual([]);
    expect(warned).not.toHaveBeenCalled();
  });

  it.runIf(root)('run as root, said with the fix, where a folder above is closed', () => {
    const warned = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const closed = stateDir(0o700);
    expect(localMachineUsers(join(closed, 'w1', 'flyd'))).toEqual(['--machine-users', 'off']);
    expect(warned).toHaveBeenCalledWith(
      `warning: machines run as root: ${closed} does not let other users through, so they cannot have users of their own (chmod o+x ${closed}, or keep the fleet's state elsewhere, to isolate them)\n`,
    );
  });
});
