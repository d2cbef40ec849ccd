import type { Duplex } from 'node:stream';

/**
 * How a machine's first process and flyd start it together, so that what a start waits for is
 * waited for side by side, not one after the other: its root's disk mounted and filled, its move
 * into its cgroups (on cgroup v1 each move waits out an RCU grace period, 10–20 ms here) and its
 * network. flyd spawns the process as soon as its environment is known, with fd 3 a pipe to
 * flyd; the process says `made` once it is where its command will run (its network entered or
 * made, machine-network.ts) and waits; flyd moves it into its cgroups meanwhile, and once that,
 * the root and the link are ready says `go`. The process then runs the command in its root.
 *
 * These shell lines end the first process's script: `$1` is the root, the rest the command.
 */
export const handshakeLines = [
  'echo made >&3',
  'read -r _ <&3 || exit 111',
  'exec 3<&-',
  'cd "$1" || exit 114',
  'shift',
  'exec "$@"',
];

/** `command` run in `dir` once flyd says `go`: a machine's first process, once in its network. */
export function heldCommand(dir: string, command: string[]): string[] {
  return ['/bin/sh', '-c', handshakeLines.join('; '), 'sh', dir, ...command];
}

/** How long a launch waits for the machine's first process to say it is ready to go. */
const madeWaitMs = 5_000;

/** Resolves once the machine's first process said `made` on `control`; rejects if it ended first. */
export function made(machineId: string, control: Duplex): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const said = new Promise<void>((resolve, reject) => {
    let text = '';
    control.setEncoding('utf8');
    control.on('data', (chunk: string) => {
      text += chunk;
      if (text.includes('made\n')) resolve();
    });
    control.once('end', () =>
      reject(new Error(`machine ${machineId} ended before it was ready to run its command`)),
    );
    control.once('error', reject);
    timer = setTimeout(
      () => reject(new Error(`machine ${machineId} did not get ready to start in time`)),
      madeWaitMs,
    );
  });
  return said.finally(() => clearTimeout(timer));
}

/** Lets the machine's first process run its command. */
export function go(control: Duplex): void {
  control.end('go\n');
}
