import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ServerProcess, startServerProcess } from '@fleet/service';
import { present } from '@fleet/service/invariant';
import { vi } from 'vitest';
import { mainJs, post, tempDir } from './agent.js';

/** One replicating agent: its own process, SQLite file, HTTP port and gossip port. */
export interface Node {
  dir: string;
  db: string;
  api: string;
  gossip: string;
  process: ServerProcess;
}

export const fleetKey = 'test-fleet-key-0123456789abcdef';

export function keyFile(dir: string, key = fleetKey): string {
  const path = join(dir, 'fleet.key');
  writeFileSync(path, key);
  return path;
}

/** Fast SWIM and sync timings, so tests see in seconds what a WAN sees in minutes. */
export const fastTimings = ['--probe-interval-ms', '100', '--sync-interval-ms', '300'];

export async function startNode(
  options: {
    bootstrap?: string[];
    dir?: string;
    gossipPort?: number;
    apiPort?: number;
    extra?: string[];
    /** Extra environment (the agent's token: CORROSION_TOKEN). */
    env?: Record<string, string>;
  } = {},
): Promise<Node> {
  const dir = options.dir ?? tempDir();
  const db = join(dir, 'corrosion.db');
  const process = await startServerProcess({
    command: globalThis.process.execPath,
    args: [
      mainJs,
      'agent',
      '--db',
      db,
      '--api-addr',
      `127.0.0.1:${options.apiPort ?? 0}`,
      '--gossip-addr',
      `127.0.0.1:${options.gossipPort ?? 0}`,
      '--gossip-key-file',
      keyFile(dir),
      '--bootstrap',
      (options.bootstrap ?? []).join(','),
      ...fastTimings,
      ...(options.extra ?? []),
    ],
    listeners: ['api', 'gossip'],
    env: { ...globalThis.process.env, LOG_LEVEL: 'warn', ...options.env },
  });
  return {
    dir,
    db,
    api: present(process.urls.api, 'the API url'),
    gossip: present(process.urls.gossip, 'the gossip url').replace('udp://', ''),
    process,
  };
}

export async function exec(node: Node, statements: unknown[]): Promise<{ version: number | null }> {
  const response = await post(`${node.api}/v1/transactions`, statements);
  if (!response.ok) throw new Error(`transaction failed: ${await response.text()}`);
  return (await response.json()) as { version: number | null };
}

/** Rows of a query, as arrays of cells. */
export async function query(node: Node, sql: string): Promise<unknown[][]> {
  const response = await post(`${node.api}/v1/queries`, sql);
  const lines = (await response.text()).trim().split('\n');
  return lines
    .map((line) => JSON.parse(line) as { row?: [number, unknown[]] })
    .flatMap((event) => (event.row ? [event.row[1]] : []));
}

/** `/v1/health` as Corrosion answers it. */
export async function health(
  node: Node,
): Promise<{ gaps: number; members: number; p99_lag: number; queue_size: number }> {
  const response = await fetch(`${node.api}/v1/health`);
  return ((await response.json()) as { response: Awaited<ReturnType<typeof health>> }).response;
}

/** `/v1/status`: Fleet's fuller view (actor, version, replication's figures). */
export async function status(
  node: Node,
  token?: string,
): Promise<{
  actor_id: string;
  version: number;
  gaps: number;
  replication: {
    members: { actor_id: string; state: string }[];
    gaps: number;
    frames_rejected: Record<string, number>;
  };
}> {
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  const response = await fetch(`${node.api}/v1/status`, { headers });
  return (await response.json()) as Awaited<ReturnType<typeof status>>;
}

/** Polls until `check` holds (or fails with its last error after `timeoutMs`). */
export async function eventually<T>(
  check: () => Promise<T>,
  timeoutMs = 20_000,
  everyMs = 100,
): Promise<T> {
  return vi.waitFor(check, { timeout: timeoutMs, interval: everyMs });
}

/** Every node's copy of a table, for comparison. */
export function tableOn(nodes: Node[], sql: string): Promise<unknown[][][]> {
  return Promise.all(nodes.map((node) => query(node, sql)));
}
