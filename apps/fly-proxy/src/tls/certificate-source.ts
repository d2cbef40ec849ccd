import type { CorrosionClient } from '@fleet/corrosion-client';

/** One `certificates` row, as the fleet schema holds it (the key sealed with the fleet key). */
export interface CertificateRow {
  hostname: string;
  app: string;
  certPem: string;
  sealedKey: string;
  /** ISO-8601 UTC. */
  notAfter: string;
}

/**
 * Where certificates live. Injected so that the Catalog, which will hold `certificates` rows in
 * memory, can serve lookups later; `corrosionCertificates` reads and writes corrosion directly.
 */
export interface CertificateSource {
  lookup(hostname: string): Promise<CertificateRow | undefined>;
  /** Writes the row so every edge sees it (a corrosion transaction, replicated by gossip). */
  save(row: CertificateRow): Promise<void>;
}

/** Names the app a TLS server name belongs to, or undefined: the handshake is then refused. */
export type AppResolver = (servername: string) => Promise<string | undefined>;

/** Certificates straight from the local corrosion agent (one query per lookup). */
export function corrosionCertificates(client: CorrosionClient): CertificateSource {
  return {
    async lookup(hostname) {
      const [row] = await client.queryObjects<{
        hostname: string;
        app: string;
        cert_pem: string;
        sealed_key: string;
        not_after: string;
      }>([
        'SELECT hostname, app, cert_pem, sealed_key, not_after FROM certificates WHERE hostname = ?',
        [hostname],
      ]);
      if (row === undefined) return undefined;
      return {
        hostname: row.hostname,
        app: row.app,
        certPem: row.cert_pem,
        sealedKey: row.sealed_key,
        notAfter: row.not_after,
      };
    },
    async save(row) {
      // All four columns in one statement: corrosion merges per column (last writer wins by
      // column version), so writing them together keeps one writer's cert and key paired
      // unless two edges write at the same moment, which the store detects and heals.
      await client.transaction([
        [
          `INSERT INTO certificates (hostname, app, cert_pem, sealed_key, not_after)
           VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (hostname) DO UPDATE SET app = excluded.app, cert_pem = excluded.cert_pem,
             sealed_key = excluded.sealed_key, not_after = excluded.not_after`,
          [row.hostname, row.app, row.certPem, row.sealedKey, row.notAfter],
        ],
      ]);
    },
  };
}

export interface CorrosionAppResolverOptions {
  /** Fleet domain: `<app>.<domain>` names the app when an `apps` row exists. */
  domain: string;
  /** How long an answer (found or not) is reused. */
  cacheTtlMs?: number;
  /** Bound on cached answers; the oldest is dropped first. */
  cacheEntriesMax?: number;
}

/**
 * Resolves a server name to its app from corrosion: `<app>.<domain>` when the app exists, else an
 * `app_hostnames` row. It checks that the app exists, unlike a bare suffix match, so a client
 * cannot make the edge issue certificates for names of apps nobody created. Answers are cached
 * briefly (bounded) because every handshake asks. The Catalog replaces this once it holds apps in
 * memory: `(name) => catalog.resolveHost(name)` plus an existence check.
 */
export function corrosionAppResolver(
  client: CorrosionClient,
  options: CorrosionAppResolverOptions,
): AppResolver {
  const suffix = `.${options.domain.toLowerCase()}`;
  const ttlMs = options.cacheTtlMs ?? 2_000;
  const entriesMax = options.cacheEntriesMax ?? 10_000;
  const cache = new Map<string, { app: string | undefined; expiresAt: number }>();
  return async (servername) => {
    const hit = cache.get(servername);
    if (hit !== undefined && hit.expiresAt > Date.now()) return hit.app;
    const label = servername.endsWith(suffix) ? servername.slice(0, -suffix.length) : '';
    const [row] = await client.queryObjects<{ app: string }>([
      `SELECT name AS app FROM apps WHERE name = ?
       UNION ALL SELECT app FROM app_hostnames WHERE hostname = ? LIMIT 1`,
      [label.includes('.') ? '' : label, servername],
    ]);
    if (cache.size >= entriesMax) cache.delete(cache.keys().next().value as string);
    cache.set(servername, { app: row?.app, expiresAt: Date.now() + ttlMs });
    return row?.app;
  };
}
