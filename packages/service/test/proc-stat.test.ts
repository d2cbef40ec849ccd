import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { present } from '../src/invariant.js';
import { childrenByParent, procStat, withDescendants } from '../src/proc-stat.js';
import { until } from '../src/vitest-until.js';

function signal(pid: number | undefined, name: NodeJS.Signals): void {
  try {
    if (pid !== undefined) process.kill(pid, name);
  } catch {
    // already gone
  }
}

const started: { shell: ChildProcess; printed?: number }[] = [];
afterEach(async () => {
  for (const { shell, printed } of started.splice(0)) {
    // The shell reaps what it started once that ends and the shell runs: an orphan would be left
    // to init, which in some containers reaps nothing. Then the shell's process group goes,
    // whatever is left in it (also when a case failed before it learnt the printed pid).
    signal(printed, 'SIGKILL');
    signal(shell.pid, 'SIGCONT');
    if (shell.exitCode === null && shell.signalCode === null)
      await Promise.race([once(shell, 'exit'), sleep(5_000)]);
    signal(shell.pid === undefined ? undefined : -shell.pid, 'SIGKILL');
  }
});

/** Runs `script` in `sh`, in a process group of its own; answers its pid and the pid it prints. */
async function shell(script: string): Promise<{ pid: number; printed: number }> {
  const entry: (typeof started)[number] = {
    shell: spawn('sh', ['-c', script], { detached: true, stdio: ['ignore', 'pipe', 'inherit'] }),
  };
  started.push(entry);
  let output = '';
  entry.shell.stdout?.setEncoding('latin1').on('data', (chunk: string) => {
    output += chunk;
  });
  const printed = await until(
    'the pid the shell prints',
    () => /^(\d+)\n/.exec(output)?.[1],
    10_000,
  );
  entry.printed = Number(printed);
  return { pid: present(entry.shell.pid, "the shell's pid"), printed: entry.printed };
}

// Real processes: a shell started by this test, with a `sleep` of its own, is read back from /proc
// under the right parents; a child that exited and was not yet reaped (a zombie) is not.
describe('the process tree from /proc', () => {
  it('holds a child under this process and a grandchild under the child', async () => {
    const { pid, printed: sleepPid } = await shell('sleep 30 & echo $!; wait');
    const children = childrenByParent();
    expect(children.get(process.pid)).toContain(pid);
    expect(children.get(pid)).toEqual([sleepPid]);
    expect(withDescendants(pid)).toEqual([pid, sleepPid]);
    // The shell is both given and a descendant of this process: listed once, where given.
    const tree = withDescendants([pid, process.pid]);
    expect(tree.slice(0, 2)).toEqual([pid, process.pid]);
    expect(tree.filter((one) => one === pid || one === sleepPid)).toEqual([pid, sleepPid]);
  });

  it('leaves out a child that exited and was not reaped', async () => {
    // The shell stops itself, so cannot reap its `sleep 0`; the cleanup resumes it to `wait`.
    const { pid, printed: zombie } = await shell('sleep 0 & echo $!; kill -STOP $$; wait');
    await until(
      'a zombie',
      () => procStat(zombie),
      (stat) => stat?.state === 'Z',
      10_000,
    );
    expect(procStat(zombie)?.ppid).toBe(pid);
    expect(childrenByParent().get(pid)).toBeUndefined();
    expect(withDescendants(pid)).toEqual([pid]);
  });
});
