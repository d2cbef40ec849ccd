import { randomBytes } from 'node:crypto';
import type { Database as Db } from 'better-sqlite3';
import { ulid } from 'ulid';
import { flydError } from '../errors.js';

/** A machine lease, as Fly's Machines API shows it (`expires_at` in unix seconds). */
export interface Lease {
  nonce: string;
  owner: string;
  description: string;
  expires_at: number;
  version: string;
}

/** The header that proves a caller holds a machine's lease. */
export const leaseNonceHeader = 'fly-machine-lease-nonce';

/**
 * One lease per machine, kept in flyd's database so it survives a restart: whoever holds the
 * nonce may change the machine until the lease expires; others get 409.
 */
export class LeaseStore {
  constructor(private readonly db: Db) {
    db.exec(`CREATE TABLE IF NOT EXISTS leases (
      machine_id TEXT PRIMARY KEY, nonce TEXT NOT NULL, owner TEXT NOT NULL,
      description TEXT NOT NULL, expires_at INTEGER NOT NULL, version TEXT NOT NULL)`);
  }

  /** The machine's lease if one is in force. */
  active(machineId: string, nowSeconds = Date.now() / 1000): Lease | undefined {
    const lease = this.db
      .prepare(
        'SELECT nonce, owner, description, expires_at, version FROM leases WHERE machine_id = ?',
      )
      .get(machineId) as Lease | undefined;
    return lease && lease.expires_at > nowSeconds ? lease : undefined;
  }

  /** Takes the lease, or refreshes it when `nonce` is the current holder's. */
  acquire(
    machineId: string,
    request: { ttlSeconds: number; owner: string; description: string; nonce?: string },
  ): Lease {
    const current = this.active(machineId);
    if (current && current.nonce !== request.nonce) throw held(machineId, current);
    const lease: Lease = {
      nonce: current?.nonce ?? randomBytes(6).toString('hex'),
      owner: current?.owner ?? request.owner,
      description: request.description || current?.description || '',
      expires_at: Math.floor(Date.now() / 1000) + request.ttlSeconds,
      version: ulid(),
    };
    this.db
      .prepare(
        'INSERT OR REPLACE INTO leases (machine_id, nonce, owner, description, expires_at, version) VALUES (?, ?, ?, ?, ?, ?)',
      )
      .run(machineId, lease.nonce, lease.owner, lease.description, lease.expires_at, lease.version);
    return lease;
  }

  release(machineId: string, nonce: string | undefined): void {
    const current = this.active(machineId);
    if (!current) return;
    if (current.nonce !== nonce) throw held(machineId, current);
    this.db.prepare('DELETE FROM leases WHERE machine_id = ?').run(machineId);
  }

  /** Refuses a change to a leased machine by a caller without the lease's nonce. */
  check(machineId: string, nonce: string | undefined): void {
    const current = this.active(machineId);
    if (current && current.nonce !== nonce) throw held(machineId, current);
  }

  forget(machineId: string): void {
    this.db.prepare('DELETE FROM leases WHERE machine_id = ?').run(machineId);
  }
}

function held(machineId: string, lease: Lease) {
  const until = new Date(lease.expires_at * 1000).toISOString();
  return flydError(
    'FLYD_ERR_LEASE_HELD',
    `aborted: machine ${machineId} lease currently held by ${lease.owner} until ${until}`,
  );
}
