import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, cpSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { FlapsClient } from '@fleet/flaps-client';
import { unmountUnder } from '@fleet/service';
import type { Fleet } from '../src/launcher/fleet.js';
import { repoRoot } from '../src/launcher/paths.js';
import { startTestFleet } from './test-fleet.js';

const require = createRequire(import.meta.url);
const fleetBin = join(dirname(require.resolve('@fleet/cli/package.json')), 'dist', 'main.js');

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: Record<string, string>;
  cwd?: string;
  /** Written to the command's stdin, then closed (as `fleet ... < file`). */
  input?: string;
}

export interface CliFleet {
  fleet: Fleet;
  /** The Machines API as the operator, to set up and check what the commands did. */
  flaps: FlapsClient;
  /** A folder of the test's: the command line's settings live in `<home>/config`. */
  home: string;
  /** Starts `fleet args...` (stdin closed, as in CI, unless `input` is piped in) at this fleet. */
  spawn(args: string[], options?: RunOptions): ChildProcess;
  /** Runs `fleet args...` to its end. */
  run(args: string[], options?: RunOptions): Promise<Run>;
  /** Kills what is still running, stops the fleet, removes the folder. */
  stop(): Promise<void>;
}

/**
 * A local fleet (corrosion, flyd, flaps, fly-proxy as processes, as `npm start` runs them) and
 * the `fleet` bin run against it the way a person does, its settings in a folder of the test's.
 */
export async function startCliFleet(hostId: string): Promise<CliFleet> {
  const home = mkdtempSync(join(tmpdir(), 'fleet-cli-'));
  chmodSync(home, 0o711); // as a checkout's: machines, each a user of its own, pass through
  const running = new Set<ChildProcess>();
  let fleet: Fleet;
  try {
    fleet = await startTestFleet('cli', { stateDir: join(home, 'fleet'), hostId });
  } catch (error) {
    rmSync(home, { recursive: true, force: true });
    throw error;
  }
  const spawnFleet: CliFleet['spawn'] = (args, options = {}) => {
    const child = spawn(process.execPath, [fleetBin, ...args], {
      cwd: options.cwd ?? home,
      env: {
        PATH: process.env.PATH,
        FLEET_CONFIG_DIR: join(home, 'config'),
        FLEET_API_URL: fleet.urls.flaps,
        FLEET_API_TOKEN: fleet.secrets.apiToken,
        ...options.env,
      },
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    if (options.input !== undefined) child.stdin!.end(options.input);
    running.add(child);
    child.once('close', () => running.delete(child));
    return child;
  };
  return {
    fleet,
    flaps: new FlapsClient(fleet.urls.flaps, fleet.secrets.apiToken),
    home,
    spawn: spawnFleet,
    run: (args, options) =>
      new Promise<Run>((resolve, reject) => {
        const child = spawnFleet(args, options);
        let stdout = '';
        let stderr = '';
        child.stdout!.on('data', (chunk) => {
          stdout += chunk;
        });
        child.stderr!.on('data', (chunk) => {
          stderr += chunk;
        });
        child.on('error', reject);
        child.on('close', (code) => resolve({ code, stdout, stderr }));
      }),
    stop: async () => {
      for (const child of running) child.kill('SIGKILL');
      try {
        await fleet.stop();
      } finally {
        unmountUnder(home); // volume disks a flyd killed at its stop's bound kept mounted
        rmSync(home, { recursive: true, force: true });
      }
    },
  };
}

/** A copy of infra/examples/hello-node in the fleet's home, for a test to deploy (and change). */
export function helloNodeCopy(cli: CliFleet): string {
  const example = join(cli.home, 'hello-node');
  cpSync(join(repoRoot, 'infra', 'examples', 'hello-node'), example, { recursive: true });
  return example;
}
