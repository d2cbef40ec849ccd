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
  /** 0 when the process could not be started. */
  pid: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts fly-proxy with `args`, its control socket in `stateDir`, and Node's diagnostic report on
 * SIGUSR2 written to `reportDir`. Its stdout and stderr lines are relayed to this process's own
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
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    // A process that could not be started (EAGAIN, ENOMEM) never exits: it counts as exited.
    child.once('error', (error) => {
      options.tail.push(`fly-proxy-watchdog: cannot start the proxy: ${error.message}`);
      if (child.pid === undefined) resolve({ code: null, signal: null });
    });
  });
  const relay = (to: NodeJS.WriteStream) => (line: string) => {
    options.tail.push(line);
    // An output nobody reads must not grow the watchdog: past the bound, lines are dropped.
    if (to.writableLength < relayBytesMax) to.write(`${line}\n`);
  };
  createInterface({ input: child.stdout! }).on('line', relay(process.stdout));
  createInterface({ input: child.stderr! }).on('line', relay(process.stderr));
  return { child, pid: child.pid ?? 0, exited };
}
