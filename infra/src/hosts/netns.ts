import { execFile } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { promisify } from 'node:util';
import { withDescendants } from '@fleet/service';

const run = promisify(execFile);
const commandTimeoutMs = 10_000;

/** Runs `ip` with its arguments (bounded); throws with its stderr on failure. */
export async function ip(...args: string[]): Promise<string> {
  try {
    const { stdout } = await run('ip', args, { timeout: commandTimeoutMs });
    return stdout;
  } catch (error) {
    const detail = (error as { stderr?: string }).stderr?.trim() || (error as Error).message;
    throw new Error(`ip ${args.join(' ')}: ${detail}`);
  }
}

/** Runs `ip` and ignores a failure: for removals of what may already be gone. */
export async function ipQuiet(...args: string[]): Promise<void> {
  await ip(...args).catch(() => undefined);
}

export async function listNamespaces(): Promise<string[]> {
  const out = await ip('netns', 'list');
  return out
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '') // split() gives at least one part
    .filter((name) => name !== '');
}

/** Pids of every process inside a named namespace (compared by the namespace's inode). */
export function pidsInNamespace(name: string): number[] {
  let target: string;
  try {
    target = statInode(`/run/netns/${name}`);
  } catch {
    return [];
  }
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (statInode(`/proc/${entry}/ns/net`) === target) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

function statInode(path: string): string {
  const stat = statSync(path);
  return `${stat.dev}:${stat.ino}`;
}

/**
 * Sends a signal to every process of a host's namespace and to their descendants: a worker's
 * machines run in network namespaces of their own (flyd's `--machine-network`), as its flyd's
 * children, and end (or pause) with their host. Returns how many there were.
 */
export function signalNamespace(name: string, signal: NodeJS.Signals): number {
  const pids = withDescendants(pidsInNamespace(name));
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // exited meanwhile
    }
  }
  return pids.length;
}

/** Kills every process of a namespace, then removes it. */
export async function removeNamespace(name: string): Promise<void> {
  signalNamespace(name, 'SIGKILL');
  await ipQuiet('netns', 'delete', name);
}

/**
 * Command and arguments that run a program inside a namespace. `nsenter --net` enters the
 * network namespace only: `ip netns exec` would also mount a fresh /sys without the cgroup
 * hierarchy, where flyd cannot give machines their cgroups.
 */
export function inNamespace(
  name: string,
  program: string,
  args: string[],
): { command: string; args: string[] } {
  return { command: 'nsenter', args: [`--net=/run/netns/${name}`, '--', program, ...args] };
}
