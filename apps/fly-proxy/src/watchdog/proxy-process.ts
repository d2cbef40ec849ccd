import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parentFdVariable } from '@fleet/service';
import type { LogTail } from './log-tail.js';

const proxyMain = join(dirname(fileURLToPath(import.meta.url)), '..', 'main.js');

/** Bound on relayed output waiting for the watchdog's own stdout; past it lines are dropped. */
const relayBytesMax = 1_048_576;

export interface ProxyProcess {
  child: ChildProcess;
  pid: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts fly-proxy with `args`, its control socket in `stateDir`, and Node's diagnostic report on
 * SIGUSR2 written to `reportDir`. Its stdout and stderr lines are relayed to this process's stdout
 * (so the `listening` events still reach whoever started the watchdog) and kept in `tail`. The
 * proxy gets the end of a pipe (FLEET_PARENT_FD, see @fleet/service's parent.ts) and shuts down
 * by itself when the watchdog is gone, however it went.
 */
export function startProxy(options: {
  args: string[];
  stateDir: string;
  reportDir: string;
  tail: LogTail;
}): ProxyProcess {
  const child = spawn(
    process.execPath,
    [
      '--report-on-signal',
      '--report-signal=SIGUSR2',
      `--report-directory=${options.reportDir}`,
      proxyMain,
      ...['--state-dir', options.stateDir],
      ...options.args,
    ],
    {
      env: { ...process.env, [parentFdVariable]: '3' },
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    },
  );
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const relay = (line: string) => {
    options.tail.push(line);
    // A stdout nobody reads must not grow the watchdog: past the bound, lines are dropped.
    if (process.stdout.writableLength < relayBytesMax) process.stdout.write(`${line}\n`);
  };
  createInterface({ input: child.stdout! }).on('line', relay);
  createInterface({ input: child.stderr! }).on('line', relay);
  if (child.pid === undefined) throw new Error(`cannot start ${proxyMain}`);
  return { child, pid: child.pid, exited };
}
