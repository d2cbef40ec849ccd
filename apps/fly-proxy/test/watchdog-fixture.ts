import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CorrosionClient } from '@fleet/corrosion-client';
import { type ServerProcess, serverMain, startServerProcess } from '@fleet/service';
import { present } from '@fleet/service/invariant';
import { until } from '@fleet/service/vitest-until';
import { startMachine } from './relay-fixture.js';

const here = dirname(fileURLToPath(import.meta.url));
export const watchdogMain = join(here, '..', 'dist', 'watchdog', 'main.js');
export const proxyctlMain = join(here, '..', 'dist', 'control', 'proxyctl.js');

/** `<state-dir>/watchdog.json`, the fields the tests read. */
export interface WatchdogStatus {
  state: string;
  proxyPid: number | null;
  proxyStartedAt: string | null;
  restarts: number;
  restartsByReason: { unanswered: number; exited: number };
  nextBackoffMs: number;
  lastIncident: string | null;
  handoffs: number;
  drainingPids: number[];
}

export function watchdogStatus(stateDir: string): WatchdogStatus {
  return JSON.parse(readFileSync(join(stateDir, 'watchdog.json'), 'utf8')) as WatchdogStatus;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Waits (bounded) until process `pid` no longer exists. */
export function processGone(pid: number, timeoutMs?: number): Promise<true> {
  return until(`process ${pid} gone`, () => !isAlive(pid), timeoutMs);
}

/**
 * What the watchdog tests route to: one corrosion agent (its database in `dir`) holding app
 * `web` (also by hostname `web.fleet.test`) with one started machine `m1`, a real HTTP server.
 * `stop()` closes the client, the agent and the machine; `dir` is the caller's to remove.
 */
export async function startWebOnCorrosion(dir: string) {
  const corrosion: ServerProcess = await startServerProcess({
    command: process.execPath,
    args: [
      serverMain('@fleet/corrosion'),
      ...['agent', '--db', join(dir, 'c.db'), '--api-addr', '127.0.0.1:0'],
    ],
    listeners: ['api'],
    env: { ...process.env, LOG_LEVEL: 'error' },
  });
  const api = present(corrosion.urls.api, "the agent's API URL");
  const client = new CorrosionClient({ url: api });
  let machine: Server | undefined;
  const stop = async () => {
    await client.close();
    await corrosion.stop();
    machine?.closeAllConnections();
    await new Promise((resolve) => (machine ? machine.close(resolve) : resolve(undefined)));
  };
  try {
    const started = await startMachine('m1');
    machine = started.server;
    await client.transaction([
      ['INSERT INTO apps (name) VALUES (?)', ['web']],
      ['INSERT INTO app_hostnames (hostname, app) VALUES (?, ?)', ['web.fleet.test', 'web']],
      [
        'INSERT INTO machines (id, app, state, private_addr, region) VALUES (?, ?, ?, ?, ?)',
        ['m1', 'web', 'started', started.addr, 'ams'],
      ],
      [
        'INSERT INTO services (machine_id, internal_port, app, ports) VALUES (?, ?, ?, ?)',
        ['m1', 8080, 'web', JSON.stringify([{ port: 80, handlers: ['http'] }])],
      ],
    ]);
  } catch (error) {
    await stop();
    throw error;
  }
  return { corrosion, api, client, stop };
}
