import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { getThroughProxy } from '../src/launcher/demo.js';
import { leftAfter, processesUsing, processTree, type Seen } from './processes.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const launcherMain = join(repoRoot, 'infra', 'dist', 'launcher', 'main.js');
const fleetFlags = (stateDir: string) => [
  ...['--state-dir', stateDir, '--proxy-listen', '127.0.0.1:0', '--api-listen', '127.0.0.1:0'],
];

interface Launched {
  child: ChildProcess;
  stateDir: string;
  /** The proxy URL the welcome banner printed. */
  proxyUrl: string;
  exited: Promise<number | string | null>;
  output: string[];
}

const launched: Launched[] = [];
afterEach(async () => {
  // Whatever a case did, nothing of its fleet outlives it, and its state directory goes.
  for (const { child, stateDir, exited } of launched.splice(0)) {
    const tree = child.pid ? processTree(child.pid) : [];
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 20_000))]);
    for (const left of await leftAfter(tree, stateDir, 5_000)) process.kill(left.pid, 'SIGKILL');
    rmSync(stateDir, { recursive: true, force: true });
  }
});

/**
 * Starts a fleet as a user would — the built launcher, or `npm start` itself — in a process
 * group of its own (as a terminal runs it), and resolves once the welcome banner is out.
 */
async function launch(
  how: 'launcher' | 'npm start',
  stateDir = mkdtempSync(join(tmpdir(), 'fleet-lifecycle-')),
): Promise<Launched> {
  const [command, args] =
    how === 'launcher'
      ? [process.execPath, [launcherMain, ...fleetFlags(stateDir)]]
      : ['npm', ['start', '--', ...fleetFlags(stateDir)]];
  const child = spawn(command, args, {
    cwd: repoRoot,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | string | null>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal)),
  );
  const output: string[] = [];
  const entry = { child, stateDir, exited, output, proxyUrl: '' };
  launched.push(entry);
  child.stderr!.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  entry.proxyUrl = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      output.push(line);
      const match = /curl -s -H 'Host: demo\.localhost' (http:\/\/[\d.:]+)\//.exec(line);
      if (match) resolve(match[1]!);
    });
    void exited.then((code) => reject(new Error(`${how} exited ${code}: ${output.join('\n')}`)));
  });
  return entry;
}

/** Every process of a running fleet: the launch's process tree (npm, launcher, servers, machines). */
function fleetProcesses(fleet: Launched): Seen[] {
  const tree = processTree(fleet.child.pid!);
  expect(tree.length).toBeGreaterThanOrEqual(7); // launcher, 4 servers, 2 machines (npm: more)
  return tree;
}

/** Resolves with the exit code, or 'still running' after `waitMsMax`. */
function exitWithin(fleet: Launched, waitMsMax = 30_000): Promise<number | string | null> {
  return Promise.race([
    fleet.exited,
    new Promise<string>((resolve) => setTimeout(resolve, waitMsMax, 'still running')),
  ]);
}

// What the issue found by running the fleet as users and operators do, each as real processes:
// however the launcher is stopped — the terminal closing (SIGHUP to its process group), npm
// alone told to stop, the launcher killed with SIGKILL, its output closed — no process of the
// fleet is left; and a second start while one runs says so and changes nothing.
describe('the launcher, stopped every way a terminal or an operator stops it', () => {
  it('refuses a second start on the same state, naming the first, and the first still serves', async () => {
    const first = await launch('launcher');
    const before = fleetProcesses(first);
    const secrets = readFileSync(join(first.stateDir, 'secrets.json'), 'utf8');
    const machineIds = new Set<string>();
    for (let attempt = 0; attempt < 20 && machineIds.size < 2; attempt++) {
      machineIds.add(
        JSON.parse((await getThroughProxy(first.proxyUrl, 'demo.localhost')).body).machine_id,
      );
    }
    expect(machineIds.size).toBe(2);

    const second = spawn(process.execPath, [launcherMain, ...fleetFlags(first.stateDir)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let said = '';
    second.stdout.on('data', (chunk: Buffer) => (said += chunk.toString()));
    second.stderr.on('data', (chunk: Buffer) => (said += chunk.toString()));
    const code = await new Promise((resolve) => second.once('exit', resolve));
    expect(code).toBe(1);
    expect(said).toContain('already running');
    expect(said).toContain(`pid ${first.child.pid}`);
    expect(said).toContain(first.proxyUrl);

    // Nothing changed: the same processes (no server started, none killed), the same secrets,
    // and the demo app still answers from the same machines.
    const after = processTree(first.child.pid!);
    expect(after.map((one) => one.pid).sort()).toEqual(before.map((one) => one.pid).sort());
    expect(readFileSync(join(first.stateDir, 'secrets.json'), 'utf8')).toBe(secrets);
    const answer = await getThroughProxy(first.proxyUrl, 'demo.localhost');
    expect(answer.status).toBe(200);
    expect(machineIds).toContain(JSON.parse(answer.body).machine_id);
  }, 120_000);

  it('puts no token on any command line: every server gets its secrets another way', async () => {
    const fleet = await launch('launcher');
    const secrets = JSON.parse(readFileSync(join(fleet.stateDir, 'secrets.json'), 'utf8'));
    const tokens = [secrets.apiToken, secrets.flydToken, secrets.corrosionToken];
    expect(tokens.every((token) => typeof token === 'string' && token.length >= 32)).toBe(true);
    const processes = fleetProcesses(fleet);
    for (const name of ['corrosion', 'flyd', 'flaps', 'fly-proxy']) {
      expect(processes.some((one) => one.cmdline.includes(`/apps/${name}/dist/main.js`))).toBe(
        true,
      );
    }
    for (const one of processes) {
      const cmdline = readFileSync(`/proc/${one.pid}/cmdline`, 'latin1');
      for (const token of tokens) expect(cmdline).not.toContain(token);
    }
  }, 120_000);

  it('stops everything when its terminal closes (SIGHUP to its process group)', async () => {
    const fleet = await launch('launcher');
    const processes = fleetProcesses(fleet);
    process.kill(-fleet.child.pid!, 'SIGHUP');
    expect(await exitWithin(fleet)).toBe(0);
    expect(await leftAfter(processes, fleet.stateDir)).toEqual([]);
  }, 120_000);

  it('stops everything when npm start alone gets SIGTERM', async () => {
    const fleet = await launch('npm start');
    const processes = fleetProcesses(fleet);
    process.kill(fleet.child.pid!, 'SIGTERM');
    await exitWithin(fleet);
    expect(await leftAfter(processes, fleet.stateDir)).toEqual([]);
  }, 180_000);

  it('leaves nothing behind when the launcher is killed with SIGKILL', async () => {
    const fleet = await launch('launcher');
    const processes = fleetProcesses(fleet);
    fleet.child.kill('SIGKILL');
    expect(await exitWithin(fleet)).toBe('SIGKILL');
    expect(await leftAfter(processes, fleet.stateDir)).toEqual([]);
    // And the state is free for the next start at once.
    expect(processesUsing(fleet.stateDir)).toEqual([]);
  }, 120_000);

  it('stops everything when whoever reads its output goes away (stdout closed)', async () => {
    const fleet = await launch('launcher');
    const processes = fleetProcesses(fleet);
    fleet.child.stdout!.destroy();
    expect(await exitWithin(fleet)).toBe(0);
    expect(await leftAfter(processes, fleet.stateDir)).toEqual([]);
  }, 120_000);
});
