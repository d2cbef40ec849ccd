import type { CorrosionClient } from '@fleet/corrosion-client';
import { stateStoreCall } from './errors.js';
import type { WorkerHost } from './placement.js';

export interface AppRow {
  name: string;
  org: string;
  network: string;
  created_at: string;
}

/** An app as the Machines API shows it: its row and how many machines and volumes it has. */
export interface AppSummary extends AppRow {
  machine_count: number;
  volume_count: number;
}

// Destroyed machines and volumes are kept as rows (their events and snapshots); they do not count.
const summaryColumns = `name, org, network, created_at,
  (SELECT count(*) FROM machines m WHERE m.app = apps.name AND m.state != 'destroyed') AS machine_count,
  (SELECT count(*) FROM volumes v WHERE v.app = apps.name AND v.state != 'destroyed') AS volume_count`;

export interface MachineRow {
  id: string;
  app: string;
  /** As given at create; flyd defaults it to the id ('' in rows written before the column). */
  name: string;
  host_id: string;
  region: string;
  instance_id: string;
  state: string;
  private_addr: string | null;
  config: string;
  created_at: string;
  updated_at: string;
  /** Its host's `hosts.status` (`ready`, `cordoned`, `down`), null when no row names the host. */
  host_state: string | null;
}

/** A hostname of an app, with its certificate's PEM and expiry when an edge issued one. */
export interface HostnameRow {
  hostname: string;
  app: string;
  cert_pem: string | null;
  not_after: string | null;
}

/** A health check's latest result, as flyd published it (Fly's `checks` of a Machine). */
export interface CheckRow {
  name: string;
  status: string;
  output: string;
  updated_at: string;
}

/** A volume as corrosion has it (written by the flyd that holds it). */
export interface VolumeRow {
  id: string;
  app: string;
  name: string;
  host_id: string;
  region: string;
  zone: string;
  state: string;
  size_gb: number;
  encrypted: number;
  fstype: string;
  attached_machine_id: string | null;
  snapshot_retention: number;
  auto_backup_enabled: number;
  used_bytes: number;
  created_at: string;
}

const machineColumns =
  'id, app, name, host_id, region, instance_id, state, private_addr, config, created_at, updated_at, ' +
  '(SELECT status FROM hosts WHERE hosts.id = machines.host_id) AS host_state';

const volumeColumns =
  'id, app, name, host_id, region, zone, state, size_gb, encrypted, fstype, attached_machine_id, snapshot_retention, auto_backup_enabled, used_bytes, created_at';

/** What flaps reads and writes in corrosion: apps (its own rows), hosts and machines (read only). */
export class FleetState {
  constructor(private readonly corrosion: CorrosionClient) {}

  async app(name: string): Promise<AppRow | undefined> {
    const rows = await this.read<AppRow>([
      'SELECT name, org, network, created_at FROM apps WHERE name = ?',
      [name],
    ]);
    return rows[0];
  }

  async appSummary(name: string): Promise<AppSummary | undefined> {
    const rows = await this.read<AppSummary>([
      `SELECT ${summaryColumns} FROM apps WHERE name = ?`,
      [name],
    ]);
    return rows[0];
  }

  async apps(org?: string): Promise<AppSummary[]> {
    return org === undefined
      ? this.read<AppSummary>(`SELECT ${summaryColumns} FROM apps ORDER BY name`)
      : this.read<AppSummary>([
          `SELECT ${summaryColumns} FROM apps WHERE org = ? ORDER BY name`,
          [org],
        ]);
  }

  /** Inserts the app; false when the name is taken. */
  async createApp(app: AppRow): Promise<boolean> {
    const answer = await stateStoreCall(() =>
      this.corrosion.transaction([
        [
          'INSERT INTO apps (name, org, network, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING',
          [app.name, app.org, app.network, app.created_at],
        ],
      ]),
    );
    return answer.results[0]?.rows_affected === 1;
  }

  async deleteApp(name: string): Promise<void> {
    await stateStoreCall(() =>
      this.corrosion.transaction([
        ['DELETE FROM certificates WHERE app = ?', [name]],
        ['DELETE FROM app_hostnames WHERE app = ?', [name]],
        ['DELETE FROM app_secrets WHERE app = ?', [name]],
        ['DELETE FROM apps WHERE name = ?', [name]],
      ]),
    );
  }

  /** The hostnames routed to an app (beside `<app>.<domain>`), with their certificate if issued. */
  appHostnames(app: string): Promise<HostnameRow[]> {
    return this.read<HostnameRow>([
      `SELECT h.hostname, h.app, c.cert_pem, c.not_after FROM app_hostnames h
       LEFT JOIN certificates c ON c.hostname = h.hostname AND c.app = h.app
       WHERE h.app = ? ORDER BY h.hostname`,
      [app],
    ]);
  }

  /** The app a hostname routes to, if any. */
  async hostnameApp(hostname: string): Promise<string | undefined> {
    const rows = await this.read<{ app: string }>([
      'SELECT app FROM app_hostnames WHERE hostname = ?',
      [hostname],
    ]);
    return rows[0]?.app;
  }

  async addHostname(app: string, hostname: string): Promise<void> {
    await stateStoreCall(() =>
      this.corrosion.transaction([
        ['INSERT INTO app_hostnames (hostname, app) VALUES (?, ?)', [hostname, app]],
      ]),
    );
  }

  /** Removes the hostname and its certificate: no edge serves or routes it any more. */
  async removeHostname(app: string, hostname: string): Promise<void> {
    await stateStoreCall(() =>
      this.corrosion.transaction([
        ['DELETE FROM certificates WHERE hostname = ? AND app = ?', [hostname, app]],
        ['DELETE FROM app_hostnames WHERE hostname = ? AND app = ?', [hostname, app]],
      ]),
    );
  }

  readyWorkers(): Promise<WorkerHost[]> {
    return this.read<WorkerHost>(
      `SELECT id, region, flyd_addr, machine_count, cpus, cpus_reserved, memory_mb, memory_mb_reserved
       FROM hosts WHERE role = 'worker' AND status = 'ready' AND flyd_addr IS NOT NULL`,
    );
  }

  /** The organization a token (by its SHA-256) belongs to. */
  async tokenOrg(tokenSha256: string): Promise<string | undefined> {
    const rows = await this.read<{ org: string }>([
      'SELECT org FROM org_tokens WHERE token_sha256 = ?',
      [tokenSha256],
    ]);
    return rows[0]?.org;
  }

  async addToken(tokenSha256: string, org: string, name: string): Promise<void> {
    await stateStoreCall(() =>
      this.corrosion.transaction([
        [
          'INSERT INTO org_tokens (token_sha256, org, name, created_at) VALUES (?, ?, ?, ?)',
          [tokenSha256, org, name, new Date().toISOString()],
        ],
      ]),
    );
  }

  /** Revokes the tokens whose hash starts with `id` (the id `POST /v1/tokens` answered). */
  async revokeToken(id: string): Promise<number> {
    const outcome = await stateStoreCall(() =>
      this.corrosion.transaction([
        ['DELETE FROM org_tokens WHERE substr(token_sha256, 1, 16) = ?', [id]],
      ]),
    );
    return outcome.results[0]?.rows_affected ?? 0;
  }

  /** Live machines of an app per worker (the placement spreads them). */
  async appMachineCounts(app: string): Promise<Map<string, number>> {
    const rows = await this.read<{ host_id: string; n: number }>([
      "SELECT host_id, count(*) AS n FROM machines WHERE app = ? AND state NOT IN ('destroyed', 'destroying') GROUP BY host_id",
      [app],
    ]);
    return new Map(rows.map((row) => [row.host_id, row.n]));
  }

  async worker(hostId: string): Promise<WorkerHost | undefined> {
    const rows = await this.read<WorkerHost>([
      'SELECT id, region, flyd_addr, machine_count, cpus, cpus_reserved, memory_mb, memory_mb_reserved FROM hosts WHERE id = ?',
      [hostId],
    ]);
    return rows[0];
  }

  /** The app's machines on every worker; destroyed ones only when asked. */
  machines(
    app: string,
    filter: { region?: string; states?: string[]; includeDeleted?: boolean } = {},
  ): Promise<MachineRow[]> {
    const where = ['app = ?'];
    const params: unknown[] = [app];
    if (!filter.includeDeleted) where.push("state != 'destroyed'");
    if (filter.region !== undefined) {
      where.push('region = ?');
      params.push(filter.region);
    }
    if (filter.states !== undefined) {
      where.push(`state IN (${filter.states.map(() => '?').join(', ')})`);
      params.push(...filter.states);
    }
    return this.read<MachineRow>([
      `SELECT ${machineColumns} FROM machines WHERE ${where.join(' AND ')} ORDER BY created_at`,
      params,
    ]);
  }

  /** The latest health check results of an app's machines (or one of them), by machine. */
  async checks(app: string, machineId?: string): Promise<Map<string, CheckRow[]>> {
    const rows = await this.read<CheckRow & { machine_id: string }>([
      `SELECT machine_id, name, status, output, updated_at FROM health_checks
       WHERE machine_id IN (SELECT id FROM machines WHERE app = ?)${machineId === undefined ? '' : ' AND machine_id = ?'}
       ORDER BY machine_id, name`,
      machineId === undefined ? [app] : [app, machineId],
    ]);
    const byMachine = new Map<string, CheckRow[]>();
    for (const { machine_id, ...check } of rows) {
      byMachine.set(machine_id, [...(byMachine.get(machine_id) ?? []), check]);
    }
    return byMachine;
  }

  /** Regions: those the fleet config named, and those where ready workers run. */
  async regions(): Promise<
    {
      code: string;
      name: string;
      latitude: number | null;
      longitude: number | null;
      workers: number;
      memory_mb_free: number;
    }[]
  > {
    // `latitude`/`longitude` as fly-go's Region reads them (null for a region only hosts name).
    return this.read([
      `SELECT code, max(name) AS name, max(lat) AS latitude, max(lon) AS longitude,
         sum(workers) AS workers, sum(memory_mb_free) AS memory_mb_free FROM (
         SELECT code, name, lat, lon, 0 AS workers, 0 AS memory_mb_free FROM regions
         UNION ALL
         SELECT region AS code, region AS name, NULL, NULL, 1, memory_mb - memory_mb_reserved FROM hosts
         WHERE role = 'worker' AND status = 'ready'
       ) GROUP BY code ORDER BY code`,
      [],
    ]);
  }

  async machine(id: string): Promise<MachineRow | undefined> {
    const rows = await this.read<MachineRow>([
      `SELECT ${machineColumns} FROM machines WHERE id = ?`,
      [id],
    ]);
    return rows[0];
  }

  /**
   * Waits, bounded, until machine `id`'s row is in this flaps' corrosion: a worker publishes to
   * its own agent and gossip brings the row here a moment later. True once it is here.
   */
  async machineArrived(id: string, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (await this.machine(id)) return true;
      if (Date.now() >= deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /** The app's volumes on every worker; destroyed ones only when asked. */
  volumes(app: string, includeDestroyed = false): Promise<VolumeRow[]> {
    return this.read<VolumeRow>([
      `SELECT ${volumeColumns} FROM volumes WHERE app = ?${includeDestroyed ? '' : " AND state != 'destroyed'"} ORDER BY created_at, id`,
      [app],
    ]);
  }

  async volume(id: string): Promise<VolumeRow | undefined> {
    const rows = await this.read<VolumeRow>([
      `SELECT ${volumeColumns} FROM volumes WHERE id = ?`,
      [id],
    ]);
    return rows[0];
  }

  /** The worker and volume of a snapshot. */
  async snapshot(
    id: string,
  ): Promise<{ id: string; volume_id: string; app: string; host_id: string } | undefined> {
    const rows = await this.read<{ id: string; volume_id: string; app: string; host_id: string }>([
      'SELECT id, volume_id, app, host_id FROM volume_snapshots WHERE id = ?',
      [id],
    ]);
    return rows[0];
  }

  private read<T>(statement: Parameters<CorrosionClient['queryObjects']>[0]): Promise<T[]> {
    return stateStoreCall(() => this.corrosion.queryObjects<T>(statement));
  }
}
