import { resolve } from 'node:path';
import { lockState, parseConfig, UsageError } from '@fleet/service';
import { apiSpec, apiToken } from './cli.js';
import { restoreBackup } from './restore.js';

type ApiConfig = { 'api-addr': string; 'api-token-file'?: string };

async function call(config: ApiConfig, method: string, path: string, body?: unknown) {
  const token = apiToken(config);
  // --api-addr is a host:port (its format, checked by parseConfig): no scheme.
  const response = await fetch(`http://${config['api-addr']}${path}`, {
    method,
    headers: {
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) {
    const text = await response.text();
    process.stderr.write(`corrosion: ${response.status} ${text}\n`);
    process.exitCode = 1;
    return undefined;
  }
  return response;
}

/** `corrosion subscribe --sql`: prints the subscription's events, one JSON line each. */
export async function subscribe(argv: string[]): Promise<void> {
  const config = parseConfig(
    { name: 'corrosion subscribe', summary: 'Follows a query: rows, then changes as they come.' },
    {
      ...apiSpec,
      sql: { type: 'string', required: true, description: 'the SELECT to follow' },
      'skip-rows': {
        type: 'boolean',
        default: false,
        description: 'only changes, no current rows',
      },
    },
    argv,
  );
  if (!config) return;
  const path = `/v1/subscriptions${config['skip-rows'] ? '?skip_rows=true' : ''}`;
  const response = await call(config, 'POST', path, config.sql);
  if (!response?.body) return;
  process.stderr.write(`subscription ${response.headers.get('corro-query-id')}\n`);
  for await (const chunk of response.body) process.stdout.write(chunk);
}

/** `corrosion cluster members`: the members this agent sees, with state and round-trip time. */
export async function cluster(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub !== 'members') throw new UsageError('usage: corrosion cluster members [flags]');
  const config = parseConfig(
    { name: 'corrosion cluster members', summary: 'Lists the cluster members this agent sees.' },
    apiSpec,
    rest,
  );
  if (!config) return;
  const response = await call(config, 'GET', '/v1/status');
  if (!response) return;
  const health = (await response.json()) as {
    replication?: { members: { actor_id: string; addr: string; state: string; rtt_ms?: number }[] };
  };
  if (!health.replication) {
    process.stdout.write('this agent does not gossip (no --gossip-addr)\n');
    return;
  }
  for (const member of health.replication.members) {
    const rtt = member.rtt_ms === undefined ? '-' : `${member.rtt_ms}ms`;
    process.stdout.write(`${member.actor_id}  ${member.addr}  ${member.state}  ${rtt}\n`);
  }
}

/** `corrosion backup --path`: a consistent copy of the running agent's database. */
export async function backup(argv: string[]): Promise<void> {
  const config = parseConfig(
    { name: 'corrosion backup', summary: "Copies the running agent's database to a file." },
    {
      ...apiSpec,
      path: {
        type: 'string',
        required: true,
        description: 'backup file to write (on the agent host)',
      },
    },
    argv,
  );
  if (!config) return;
  // The agent takes absolute paths only: a relative one means this shell's directory.
  const response = await call(config, 'POST', '/v1/backup', { path: resolve(config.path) });
  if (response) process.stdout.write(`${await response.text()}\n`);
}

/** `corrosion restore --from --db`: puts a backup in place (agent stopped), fresh actor id. */
export function restore(argv: string[]): void {
  const config = parseConfig(
    {
      name: 'corrosion restore',
      summary: 'Replaces a stopped agent database with a backup, under a fresh actor id.',
    },
    {
      from: { type: 'string', required: true, description: 'the backup file' },
      db: { type: 'string', required: true, description: 'the agent database to replace' },
    },
    argv,
  );
  if (!config) return;
  // The agent holds this lock while it runs: restoring under a live agent is refused, naming it.
  const lock = lockState(`${config.db}.lock`, 'corrosion restore');
  const { actorId } = restoreBackup(config.from, config.db);
  lock.release();
  process.stdout.write(`${JSON.stringify({ db: config.db, actor_id: actorId })}\n`);
}

/** `corrosion reload`: the agent re-reads its schema files and applies what is new. */
export async function reload(argv: string[]): Promise<void> {
  const config = parseConfig(
    {
      name: 'corrosion reload',
      summary: "Applies the agent's schema files again (additive changes).",
    },
    apiSpec,
    argv,
  );
  if (!config) return;
  const response = await call(config, 'POST', '/v1/migrations');
  if (response) process.stdout.write(`${await response.text()}\n`);
}
