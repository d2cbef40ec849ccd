import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { lockState, StateLockedError, stateLockHolder } from '../src/index.js';

const built = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'index.js');
const dir = mkdtempSync(join(tmpdir(), 'fleet-state-lock-'));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Another process that takes the lock at `path` and holds it until killed; resolves once held.
 * It drops the handle and collects garbage first: the lock must not depend on the caller keeping it.
 */
async function holdInAnotherProcess(path: string): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [
      '--expose-gc',
      '--input-type=module',
      '-e',
      `const { lockState } = await import(${JSON.stringify(built)});
       lockState(${JSON.stringify(path)}, 'holder-test', { url: 'http://127.0.0.1:1' });
       globalThis.gc();
       await new Promise((resolve) => setTimeout(resolve, 50));
       globalThis.gc();
       console.log('held');
       setInterval(() => {}, 1000);`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => line === 'held' && resolve());
    child.once('exit', (code) => reject(new Error(`holder exited ${code}`)));
  });
  return child;
}

// The lock is the kernel's (an fcntl lock through SQLite), so it is held exactly as long as the
// holder lives: a second taker is refused with the holder's pid, and a killed holder's lock is
// free at once, whatever pid its leftover record names.
describe('the state lock', () => {
  it('refuses a second process and names the holder', async () => {
    const path = join(dir, 'a', 'server.lock');
    const holder = await holdInAnotherProcess(path);
    let refused: unknown;
    try {
      lockState(path, 'second');
    } catch (error) {
      refused = error;
    }
    expect(refused).toBeInstanceOf(StateLockedError);
    expect((refused as StateLockedError).holder).toMatchObject({
      pid: holder.pid,
      name: 'holder-test',
      url: 'http://127.0.0.1:1',
    });
    expect((refused as Error).message).toContain(`pid ${holder.pid}`);
    expect(stateLockHolder(path)?.pid).toBe(holder.pid);
  });

  it('is free as soon as its holder is killed with SIGKILL', async () => {
    const path = join(dir, 'b', 'server.lock');
    const holder = await holdInAnotherProcess(path);
    holder.kill('SIGKILL');
    await new Promise((resolve) => holder.once('exit', resolve));
    expect(stateLockHolder(path)).toBeUndefined();
    const lock = lockState(path, 'after');
    expect(stateLockHolder(path)?.pid).toBe(process.pid);
    lock.release();
  });

  it('is not held by a leftover record naming a live pid (pid reuse cannot block it)', () => {
    const path = join(dir, 'c', 'server.lock');
    lockState(path, 'first').release();
    // A record as a dead holder would leave it, naming a pid that now belongs to a live process.
    writeFileSync(
      `${path}.holder.json`,
      JSON.stringify({ pid: process.ppid, name: 'ghost', since: '' }),
    );
    const lock = lockState(path, 'second');
    lock.release();
  });

  it('refuses a second taker in the same process, and is free again once released', () => {
    const path = join(dir, 'd', 'server.lock');
    const lock = lockState(path, 'first');
    expect(() => lockState(path, 'again')).toThrow(StateLockedError);
    lock.release();
    lockState(path, 'again').release();
    // Only the lock file itself stays: no journal, no record of a holder that is gone.
    expect(readdirSync(join(dir, 'd'))).toEqual(['server.lock']);
    expect(existsSync(`${path}.holder.json`)).toBe(false);
  });
});
