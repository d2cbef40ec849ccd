import type { ChildProcess } from 'node:child_process';
import cluster from 'node:cluster';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parentFdVariable } from '@fleet/service';
import { present } from '@fleet/service/invariant';
import { isMessage, type ToGeneration, type ToWatchdog } from '../handoff/messages.js';
import type { LogTail } from './log-tail.js';

const proxyMain = join(dirname(fileURLToPath(import.meta.url)), '..', 'main.js');

/** Bound on relayed output waiting for the watchdog's own stdout; past it lines are dropped. */
const relayBytesMax = 1_048_576;

export interface ProxyProcess {
  child: ChildProcess;
  /** 0 when the process could not be started. */
  pid: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends over the IPC channel; false when the proxy is gone. */
  send(message: ToGeneration): boolean;
  /** Messages the proxy sent (ready, restart, draining). */
  onMessage(handler: (message: ToWatchdog) => void): void;
}

/**
 * Each generation is a `cluster` worker with scheduling `none`: when it listens on an address,
 * the watchdog (the cluster primary) binds that address once and hands the bound handle to it
 * over IPC; the next generation listening on the same address gets the same handle, so the
 * kernel's accept queue never closes during a handoff. The handle lives while a generation holds
 * it. Node 20 has no reusePort; this is handle passing over IPC, done by Node's own module.
 */
cluster.schedulingPolicy = cluster.SCHED_NONE;

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
  /** Added to the proxy's environment. */
  env: Record<string, string>;
}): ProxyProcess {
  cluster.setupPrimary({
    exec: proxyMain,
    execArgv: [
      '--report-on-signal',
      '--report-signal=SIGUSR2',
      `--report-directory=${options.reportDir}`,
    ],
    args: ['--state-dir', options.stateDir, ...options.args],
    stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'ipc'],
  });
  const worker = cluster.fork({ ...options.env, [parentFdVariable]: '3' });
  const child = worker.process;
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
  // stdio is piped (setupPrimary above), so both streams exist
  const stdout = present(child.stdout, "the proxy's stdout pipe");
  const stderr = present(child.stderr, "the proxy's stderr pipe");
  createInterface({ input: stdout }).on('line', relay(process.stdout));
  createInterface({ input: stderr }).on('line', relay(process.stderr));
  // A worker that dies is not restarted by cluster (that is the supervisor's job); its errors
  // (a send to a process that just exited) are the exit's business.
  worker.on('error', () => undefined);
  return {
    child,
    pid: child.pid ?? 0,
    exited,
    send: (message) => {
      if (!worker.isConnected()) return false;
      worker.send(message);
      return true;
    },
    onMessage: (handler) =>
      worker.on('message', (message: unknown) => {
        if (isMessage<ToWatchdog>(message)) handler(message);
      }),
  };
}
