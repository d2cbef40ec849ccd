import type { LockLogger } from '@fleet/locks';

export type CatalogMode = 'eager' | 'lazy';

export interface CatalogOptions {
  /** Fleet domain: `<app>.<domain>` names an app. */
  domain: string;
  logger: LockLogger & { error(details: object, message: string): void };
  /** `eager` follows every row; `lazy` holds only the apps requests asked for (seed 004). */
  mode?: CatalogMode;
  /** This edge's region: machines there are local; distances are measured from it. */
  region?: string;
  /** Locks the per-app tables are spread over (by a hash of the app name). */
  shards?: number;
  /** Bound on every write to the table. */
  writeTimeoutMs?: number;
  /** Lazy mode: apps held at most; past it the least recently used idle ones are evicted. */
  maxLoadedApps?: number;
  /** Lazy mode: loads running at once. */
  loadConcurrencyMax?: number;
  /** Lazy mode: loads waiting for a slot; past it a load is shed (CATALOG_ERR_LOAD_SHED). */
  loadQueueMax?: number;
  /** Lazy mode: deadline of a load, queue wait included (CATALOG_ERR_LOAD_TIMEOUT). */
  loadTimeoutMs?: number;
  /** Lazy mode: changes of one app kept while it loads; past it the load fails. */
  loadBufferedChangesMax?: number;
  /** Lazy mode: how long an unknown app or hostname is remembered as unknown. */
  negativeTtlMs?: number;
  /** Lazy mode: unknown apps and hostnames remembered at most (oldest forgotten first). */
  negativeEntriesMax?: number;
  /** Candidates a route decision lists (the proxy retries down the list). */
  maxCandidates?: number;
  /** RTTs within the same bucket count as equally close (random among them). */
  rttBucketMs?: number;
  /** How long a load reported by a backhaul is trusted without a new report. */
  remoteLoadTtlMs?: number;
  /** Requests of one app allowed to wait for capacity when every machine is at its hard limit. */
  admissionQueueMax?: number;
  /** Default bound on that wait. */
  admissionTimeoutMs?: number;
  /** A table with no event and no answer from the agent for this long is stale. */
  staleAfterMs?: number;
  /** How long a machine reported unreachable is ranked after every reachable one. */
  unreachableTtlMs?: number;
  /** First resync of a quarantined app after this long; doubling up to quarantineRetryMsMax. */
  quarantineRetryMs?: number;
  quarantineRetryMsMax?: number;
  /** Resyncs of an app whose update its lock refused, at most (then: reloaded on next use). */
  resyncAttemptsMax?: number;
  /** First retry of a failed resync after this long (doubling). */
  resyncRetryMs?: number;
  /** Eager: rows of a table starting over kept beside the old table until it swaps in. */
  rebuildRowsMax?: number;
}

export type ResolvedOptions = Required<Omit<CatalogOptions, 'logger'>> &
  Pick<CatalogOptions, 'logger'>;

export function resolveOptions(options: CatalogOptions): ResolvedOptions {
  const resolved: ResolvedOptions = {
    mode: 'eager',
    region: '',
    shards: 16,
    writeTimeoutMs: 5_000,
    maxLoadedApps: 10_000,
    loadConcurrencyMax: 8,
    loadQueueMax: 256,
    loadTimeoutMs: 2_000,
    loadBufferedChangesMax: 10_000,
    negativeTtlMs: 5_000,
    negativeEntriesMax: 10_000,
    maxCandidates: 4,
    rttBucketMs: 5,
    remoteLoadTtlMs: 5_000,
    admissionQueueMax: 64,
    admissionTimeoutMs: 1_000,
    staleAfterMs: 15_000,
    unreachableTtlMs: 10_000,
    quarantineRetryMs: 30_000,
    quarantineRetryMsMax: 600_000,
    resyncAttemptsMax: 5,
    resyncRetryMs: 200,
    rebuildRowsMax: 2_000_000,
    ...stripUndefined(options),
    domain: options.domain,
    logger: options.logger,
  };
  for (const key of [
    'shards',
    'maxLoadedApps',
    'loadConcurrencyMax',
    'maxCandidates',
    'negativeEntriesMax',
    'resyncAttemptsMax',
    'rebuildRowsMax',
  ] as const) {
    if (!Number.isInteger(resolved[key]) || resolved[key] < 1)
      throw new RangeError(`catalog option ${key} must be an integer ≥ 1, got ${resolved[key]}`);
  }
  for (const key of [
    'staleAfterMs',
    'unreachableTtlMs',
    'quarantineRetryMs',
    'quarantineRetryMsMax',
    'resyncRetryMs',
  ] as const) {
    if (!(resolved[key] > 0) || !Number.isFinite(resolved[key]))
      throw new RangeError(`catalog option ${key} must be a positive number, got ${resolved[key]}`);
  }
  if (resolved.mode !== 'eager' && resolved.mode !== 'lazy')
    throw new RangeError(`catalog option mode must be eager or lazy, got ${resolved.mode}`);
  return resolved;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
