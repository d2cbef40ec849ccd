import type { CorrosionClient } from '@fleet/corrosion-client';
import { present } from '@fleet/service/invariant';
import { appTables, type FollowedTable, followedTables } from './rows.js';

/** The rows of one app, table by table, as a lazy load reads them from corrosion. */
export type AppRows = Record<(typeof appTables)[number], unknown[][]>;

function columns(table: FollowedTable): string {
  return followedTables[table].join(', ');
}

/** Per table, the statement selecting one app's rows (health checks through its machines). */
const byApp: Record<(typeof appTables)[number], string> = {
  apps: `SELECT ${columns('apps')} FROM apps WHERE name = ?`,
  app_hostnames: `SELECT ${columns('app_hostnames')} FROM app_hostnames WHERE app = ?`,
  machines: `SELECT ${columns('machines')} FROM machines WHERE app = ?`,
  services: `SELECT ${columns('services')} FROM services WHERE app = ?`,
  health_checks: `SELECT ${columns('health_checks')} FROM health_checks WHERE machine_id IN (SELECT id FROM machines WHERE app = ?)`,
  certificates: `SELECT ${columns('certificates')} FROM certificates WHERE app = ?`,
};

/** Reads every row of one app (six queries in parallel, each cancelled by `signal`). */
export async function readAppRows(
  client: CorrosionClient,
  app: string,
  signal: AbortSignal,
): Promise<AppRows> {
  const answers = await Promise.all(
    appTables.map((table) => client.query([byApp[table], [app]], { signal })),
  );
  const rows = {} as AppRows;
  appTables.forEach((table, index) => {
    rows[table] = present(answers[index], `the answer for ${table}`).rows;
  });
  return rows;
}

/** The app a hostname names, or null. */
export async function readHostnameApp(
  client: CorrosionClient,
  hostname: string,
  signal: AbortSignal,
): Promise<string | null> {
  const answer = await client.query(
    ['SELECT app FROM app_hostnames WHERE lower(hostname) = ? LIMIT 1', [hostname]],
    { signal },
  );
  const app = answer.rows[0]?.[0];
  return typeof app === 'string' && app !== '' ? app : null;
}
