import { CorrosionClient } from '@fleet/corrosion-client';
import { parseConfig, readSecret } from '@fleet/service';

/** The flags every client command has: where the agent is, and its token. */
export const apiSpec = {
  'api-addr': {
    type: 'string',
    format: 'address',
    default: '127.0.0.1:8787',
    description: 'address of the agent API',
  },
  'api-token-file': {
    type: 'string',
    description: 'file holding the bearer token of the agent API; or set CORROSION_TOKEN',
  },
} as const;

/**
 * The agent's token, from `--api-token-file` or CORROSION_TOKEN as the agent itself takes it:
 * never from a flag's value, which every local user (a machine, on a worker) reads in `ps`.
 */
export function apiToken(config: { 'api-token-file'?: string }): string | undefined {
  return readSecret({
    fileFlag: 'api-token-file',
    file: config['api-token-file'],
    variable: 'CORROSION_TOKEN',
  });
}

const clientSpec = {
  ...apiSpec,
  sql: { type: 'string', required: true, description: 'the SQL statement' },
  'timeout-ms': {
    type: 'number',
    default: 10_000,
    min: 1,
    max: 3_600_000,
    description: 'bound on the call',
  },
} as const;

/** `corrosion exec --sql ...` and `corrosion query --sql ...` against a running agent. */
export async function runClientCommand(command: 'exec' | 'query', argv: string[]): Promise<void> {
  const summary =
    command === 'exec'
      ? 'Runs a write statement in a transaction on a running agent and prints the answer.'
      : 'Runs a read-only query on a running agent and prints one JSON array per row.';
  const config = parseConfig({ name: `corrosion ${command}`, summary }, clientSpec, argv);
  if (!config) return;
  const client = new CorrosionClient({
    url: `http://${config['api-addr']}`,
    token: apiToken(config),
    timeoutMs: config['timeout-ms'],
  });
  try {
    if (command === 'exec') {
      process.stdout.write(`${JSON.stringify(await client.transaction([config.sql]))}\n`);
      return;
    }
    const { columns, rows } = await client.query(config.sql);
    process.stdout.write(`${JSON.stringify(columns)}\n`);
    for (const row of rows) process.stdout.write(`${JSON.stringify(row)}\n`);
  } finally {
    await client.close();
  }
}
