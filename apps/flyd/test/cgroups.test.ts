import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { present } from '@fleet/service/invariant';
import { describe, expect, it } from 'vitest';
import { Cgroups, inGroups } from '../src/runtime/cgroups.js';

// Machine limits are Linux cgroups: a machine over its memory is OOM-killed by the kernel and
// reported so; its CPU quota is `cpus` cores. As root (CI, a worker) the groups must work.
const root = process.getuid?.() === 0;

describe('cgroups', () => {
  it('are available to flyd when it runs as root, and refused otherwise', () => {
    const cgroups = Cgroups.detect();
    if (root) expect(cgroups).toBeDefined();
    else expect(cgroups).toBeUndefined();
  });

  it('takes a folder without cgroup controllers for none, and makes nothing in it', () => {
    // As /sys/fs/cgroup under `ip netns exec`: there, but no hierarchy mounted.
    const folder = mkdtempSync(join(tmpdir(), 'fleet-no-cgroups-'));
    try {
      expect(Cgroups.detect(folder)).toBeUndefined();
      expect(readdirSync(folder)).toEqual([]);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });

  it.runIf(root)('a machine over its memory limit is OOM-killed, and says so', async () => {
    const cgroups = present(Cgroups.detect(), 'Cgroups.detect()');
    const id = randomBytes(7).toString('hex');
    const procs = cgroups.create(id, { memoryMb: 96, cpus: 0.5, pidsMax: 64 });
    const hog = 'const kept = []; for (;;) kept.push(Buffer.alloc(1 << 20, 1));';
    const [command, ...args] = inGroups(procs, [process.execPath, '-e', hog]);
    const child = spawn(present(command, 'command'), args, { stdio: 'ignore' });
    const [code, signal] = await once(child, 'exit');
    expect({ code, signal }).toEqual({ code: null, signal: 'SIGKILL' });
    expect(cgroups.oomKilled(id)).toBe(true);
    cgroups.remove(id);
  });

  it.runIf(root)(
    'a machine runs inside its groups with its quota, and they go away after',
    async () => {
      const cgroups = present(Cgroups.detect(), 'Cgroups.detect()');
      const id = randomBytes(7).toString('hex');
      const procs = cgroups.create(id, { memoryMb: 128, cpus: 0.5, pidsMax: 64 });
      const [command, ...args] = inGroups(procs, ['/bin/sleep', '30']);
      const child = spawn(present(command, 'command'), args, { stdio: 'ignore' });
      await once(child, 'spawn');
      // Joined before the exec: once the command runs, it runs in its groups.
      await expect.poll(() => readFileSync(`/proc/${child.pid}/comm`, 'utf8').trim()).toBe('sleep');
      expect(readFileSync(`/proc/${child.pid}/cgroup`, 'utf8')).toContain(`/fleet/${id}`);
      const dirs = procs.map((file) => file.replace(/\/cgroup\.procs$/, ''));
      if (cgroups.version === 1) {
        expect(readFileSync(`${dirs[0]}/memory.limit_in_bytes`, 'utf8').trim()).toBe(
          String(128 << 20),
        );
        expect(readFileSync(`${dirs[1]}/cpu.cfs_quota_us`, 'utf8').trim()).toBe('50000');
      } else {
        expect(readFileSync(`${dirs[0]}/cpu.max`, 'utf8').trim()).toBe('50000 100000');
      }
      expect(cgroups.oomKilled(id)).toBe(false);
      child.kill('SIGKILL');
      await once(child, 'exit');
      cgroups.remove(id);
      for (const dir of dirs) expect(existsSync(dir)).toBe(false);
    },
  );

  it.runIf(root)(
    'a machine that forks without end fails its own forks, past its pids bound',
    async () => {
      const cgroups = present(Cgroups.detect(), 'Cgroups.detect()');
      expect(cgroups.boundsPids).toBe(true); // every worker and CI host here has the controller
      const id = randomBytes(7).toString('hex');
      const procs = cgroups.create(id, { memoryMb: 256, cpus: 1, pidsMax: 20 });
      // 40 sleepers asked for, in one shell: past 20 tasks the forks fail.
      const bomb = 'for i in $(seq 1 40); do sleep 30 & done; sleep 1; echo done';
      const [command, ...args] = inGroups(procs, ['/bin/sh', '-c', bomb]);
      const child = spawn(present(command, 'command'), args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr?.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      try {
        await expect
          .poll(() => stderr, { timeout: 10_000 })
          .toMatch(/fork|Resource temporarily unavailable/i);
        // The shell and the sleepers it could start: up to the bound, never past it.
        expect(cgroups.procs(id).length).toBeGreaterThan(10);
        expect(cgroups.procs(id).length).toBeLessThanOrEqual(20);
      } finally {
        for (const pid of cgroups.procs(id)) process.kill(pid, 'SIGKILL');
        await once(child, 'close');
        await expect.poll(() => cgroups.procs(id)).toEqual([]);
        cgroups.remove(id);
      }
    },
  );
});
