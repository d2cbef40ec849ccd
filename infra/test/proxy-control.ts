import { createConnection } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/** A machine as an edge's `catalog <app>` shows it (the fields the harness tests read). */
export interface CatalogMachine {
  id: string;
  region: string;
  hostId: string;
  hostStatus: string;
  /** The RTT this edge measured to the machine's host (h2 PING), -1 before any. */
  hostRttMs: number;
}

export interface CatalogView {
  machines: CatalogMachine[];
  route: { kind: string; candidates?: { machine: string }[] };
}

/**
 * One command on a harness host's edge fly-proxy control channel (`<state>/<host>/edge/control.sock`,
 * a unix socket: reachable from the root namespace), as proxyctl sends it.
 */
export function edgeControl<T>(
  stateDir: string,
  hostId: string,
  command: string,
  args: string[] = [],
  timeoutMs = 10_000,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(join(stateDir, hostId, 'edge', 'control.sock'));
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`${command}: no answer in time`)));
    socket.once('error', reject);
    createInterface({ input: socket }).once('line', (line) => {
      socket.end();
      const answer = JSON.parse(line) as { ok: boolean; result?: T; error?: { message: string } };
      if (answer.ok) resolve(answer.result as T);
      else reject(new Error(`${command}: ${answer.error?.message}`));
    });
    socket.write(`${JSON.stringify({ command, args })}\n`);
  });
}
