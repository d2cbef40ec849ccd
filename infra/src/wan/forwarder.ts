import { type ChildProcess, spawn } from 'node:child_process';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { present } from '@fleet/service/invariant';
import { inNamespace } from '../hosts/netns.js';
import { repoRoot } from '../launcher/paths.js';

/** The forwarder program (python3, standard library only): see its docstring. */
export const forwarderScript = join(repoRoot, 'infra', 'src', 'wan', 'forwarder.py');

export interface ForwarderConfig {
  /** Region → name of its TUN device in the router namespace. */
  tuns: Record<string, string>;
  /** Host address → its region. */
  hosts: Record<string, { id: string; region: string }>;
  intra_region_latency_ms: number;
  /** `pairKey(a, b)` → one-way delay and loss share. */
  links: Record<string, { latency_ms: number; loss: number }>;
}

export interface Forwarder {
  child: ChildProcess;
  controlPath: string;
  stop(): Promise<void>;
}

/**
 * Starts the forwarder inside the router namespace and waits for its `ready` line (its TUN
 * devices exist then). Its stdin is a pipe from this process: when we die, it stops.
 */
export function startForwarder(
  namespace: string,
  configFile: string,
  controlPath: string,
  startTimeoutMs = 10_000,
): Promise<Forwarder> {
  const program = inNamespace(namespace, 'python3', [
    forwarderScript,
    '--config',
    configFile,
    '--control',
    controlPath,
  ]);
  const child = spawn(program.command, program.args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stderr: string[] = [];
  present(child.stderr, 'the piped stderr').on('data', (chunk: Buffer) =>
    stderr.push(chunk.toString()),
  );
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail('no ready line in time'), startTimeoutMs);
    const fail = (reason: string) => {
      clearTimeout(timer);
      void stop();
      reject(new Error(`the WAN forwarder did not start: ${reason}: ${stderr.join('').trim()}`));
    };
    const onEarlyExit = (code: number | null) => fail(`exited with ${code}`);
    child.once('exit', onEarlyExit);
    createInterface({ input: present(child.stdout, 'the piped stdout') }).once('line', (line) => {
      if (!line.includes('"ready"')) return fail(`unexpected output ${line}`);
      clearTimeout(timer);
      child.removeListener('exit', onEarlyExit);
      resolve({ child, controlPath, stop });
    });
  });
}

/** One request to the forwarder's control socket; resolves with its JSON answer. */
export function forwarderCall(
  controlPath: string,
  request: Record<string, unknown>,
  timeoutMs = 5000,
): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(controlPath);
    socket.setTimeout(timeoutMs, () =>
      socket.destroy(new Error('the WAN forwarder did not answer in time')),
    );
    socket.once('error', reject);
    createInterface({ input: socket }).once('line', (line) => {
      socket.end();
      resolve(JSON.parse(line) as Record<string, unknown>);
    });
    socket.write(`${JSON.stringify(request)}\n`);
  });
}
