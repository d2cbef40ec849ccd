import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { present } from './invariant.js';
import { parentFdVariable } from './parent.js';

export interface ServerProcessOptions {
  /** Program and arguments; the program is usually `process.execPath` and a built main.js. */
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Listener names (from the `listening` log events) to wait for before resolving. */
  listeners: string[];
  /** Give up waiting for the listeners after this long. */
  startTimeoutMs?: number;
  /** Copy the child's stdout and stderr to this file (appending). */
  logFile?: string;
  /**
   * Run the server in its own process group, so a terminal's Ctrl-C reaches only the parent,
   * which then stops its servers in order (the launcher stops flyd before corrosion).
   */
  ownProcessGroup?: boolean;
  /**
   * Hand the server a pipe (fd 3, named by FLEET_PARENT_FD) whose end tells it that this process
   * is gone, so it shuts down by itself even after a kill -9 of this process (default true).
   */
  exitWithParent?: boolean;
}

export interface ServerProcess {
  child: ChildProcess;
  /** Listener name → URL, as the server announced them. */
  urls: Record<string, string>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process has exited. */
  stop(graceMs?: number): Promise<void>;
  /** Resolves with the exit code (or signal) once the process has exited. */
  exited: Promise<number | NodeJS.Signals>;
}

/**
 * Starts a Fleet server as a child process and waits until it has announced every listener in
 * `listeners` with a `{"event":"listening","listener","url"}` log line on stdout. The launcher and
 * the integration tests start servers this way, so ports can be ephemeral.
 */
export function startServerProcess(options: ServerProcessOptions): Promise<ServerProcess> {
  const exitWithParent = options.exitWithParent ?? true;
  const env = { ...(options.env ?? process.env) };
  delete env[parentFdVariable];
  if (exitWithParent) env[parentFdVariable] = '3';
  const child = spawn(options.command, options.args, {
    cwd: options.cwd,
    env,
    stdio: exitWithParent ? ['ignore', 'pipe', 'pipe', 'pipe'] : ['ignore', 'pipe', 'pipe'],
    detached: options.ownProcessGroup ?? false,
  });
  const log: WriteStream | undefined = options.logFile
    ? createWriteStream(options.logFile, { flags: 'a' })
    : undefined;
  const exited = new Promise<number | NodeJS.Signals>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? (signal as NodeJS.Signals)));
  });
  void exited.then(() => log?.end());
  const tail: string[] = [];
  const keepTail = (line: string) => {
    log?.write(`${line}\n`);
    tail.push(line);
    if (tail.length > 20) tail.shift();
  };
  createInterface({ input: present(child.stderr, 'the piped stderr') }).on('line', keepTail);
  const urls: Record<string, string> = {};
  const handle: ServerProcess = {
    child,
    urls,
    exited,
    stop: (graceMs) => stop(child, exited, graceMs),
  };
  return new Promise((resolve, reject) => {
    const fail = (reason: string) => {
      clearTimeout(timer);
      void stop(child, exited, 1000);
      reject(new Error(`${options.args[0] ?? options.command}: ${reason}\n${tail.join('\n')}`));
    };
    const timer = setTimeout(
      () => fail(`no listening event within ${options.startTimeoutMs ?? 15_000} ms`),
      options.startTimeoutMs ?? 15_000,
    );
    void exited.then((code) => fail(`exited (${code}) before it was ready`));
    createInterface({ input: present(child.stdout, 'the piped stdout') }).on('line', (line) => {
      keepTail(line);
      const event = parseListening(line);
      if (!event) return;
      urls[event.listener] = event.url;
      if (options.listeners.every((name) => name in urls)) {
        clearTimeout(timer);
        resolve(handle);
      }
    });
  });
}

function parseListening(line: string): { listener: string; url: string } | undefined {
  if (!line.includes('"listening"')) return undefined;
  try {
    const record = JSON.parse(line) as { event?: unknown; listener?: unknown; url?: unknown };
    if (record.event !== 'listening') return undefined;
    if (typeof record.listener !== 'string' || typeof record.url !== 'string') return undefined;
    return { listener: record.listener, url: record.url };
  } catch {
    return undefined;
  }
}

async function stop(
  child: ChildProcess,
  exited: Promise<number | NodeJS.Signals>,
  graceMs = 10_000,
): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}
