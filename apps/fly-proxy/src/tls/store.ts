import assert from 'node:assert/strict';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { createSecureContext, type SecureContext } from 'node:tls';
import { openSealed, sealSecret } from '@fleet/fleet-key';
import type { Logger } from '@fleet/service';
import type { FleetCa } from './ca.js';
import type { AppResolver, CertificateRow, CertificateSource } from './certificate-source.js';
import type { TlsMetrics } from './metrics.js';
import { certificateName } from './server-name.js';
import { TlsError } from './tls-error.js';

export interface CertificateStoreOptions {
  source: CertificateSource;
  resolveApp: AppResolver;
  ca: FleetCa;
  fleetKey: Buffer;
  logger: Logger;
  metrics: TlsMetrics;
  /** Parsed SecureContexts kept in memory; the least recently used is dropped first. */
  contextsMax?: number;
  /**
   * Names being resolved to an app, and names being loaded (looked up, perhaps issued), at once;
   * past either bound handshakes fail fast.
   */
  loadsMax?: number;
  /** Issuances at once (each costs a key generation and a corrosion write). */
  issuancesMax?: number;
  /** Lifetime of an issued leaf. */
  leafValidityMs?: number;
  /** A certificate of the fleet CA is renewed once fewer than this many ms of it remain. */
  renewBeforeMs?: number;
}

interface Entry {
  app: string;
  context: SecureContext;
  notAfterMs: number;
  /** When to replace it; Infinity for a certificate the fleet CA did not issue (its owner renews). */
  renewAtMs: number;
}

/** Certificates served within this much of their expiry are replaced before serving. */
const expiryMarginMs = 30_000;
/** After a background renewal fails, the next one is tried this much later. */
const renewRetryMs = 60_000;

/**
 * TLS certificates by server name, for the SNI callback: a bounded cache of SecureContexts over the
 * `certificates` table, and on-demand issuance by the fleet CA (as Caddy's on-demand TLS) for a
 * name that an app answers to but that has no usable certificate. Concurrent handshakes for one
 * name share one load (so one issuance); a name no app answers to fails the handshake.
 */
export class CertificateStore {
  readonly #options: Required<Omit<CertificateStoreOptions, 'renewBeforeMs'>> & {
    renewBeforeMs: number;
  };
  readonly #contexts = new Map<string, Entry>();
  readonly #loads = new Map<string, Promise<SecureContext>>();
  #issuing = 0;
  #issued = 0;
  #resolving = 0;

  constructor(options: CertificateStoreOptions) {
    const leafValidityMs = options.leafValidityMs ?? 7 * 86_400_000;
    this.#options = {
      contextsMax: 10_000,
      loadsMax: 256,
      issuancesMax: 16,
      ...options,
      leafValidityMs,
      renewBeforeMs: options.renewBeforeMs ?? Math.floor(leafValidityMs / 3),
    };
    assert.ok(this.#options.renewBeforeMs < leafValidityMs, 'renewBeforeMs < leafValidityMs');
  }

  /** For `tls.createServer({ SNICallback })`; errors fail the handshake (no default certificate). */
  readonly sniCallback = (
    servername: string,
    callback: (error: Error | null, context?: SecureContext) => void,
  ): void => {
    this.contextFor(servername).then(
      (context) => callback(null, context),
      (error: unknown) => {
        const code = error instanceof TlsError ? error.code : 'TLS_ERR_ISSUANCE';
        this.#options.metrics.handshakesRefused.add(1, { code });
        // Refusals a client causes (unknown names, floods) are counted, not logged above debug.
        const level = code === 'TLS_ERR_ISSUANCE' ? 'warn' : 'debug';
        this.#options.logger[level](
          { code, serverName: servername.slice(0, 253), err: error },
          'TLS handshake refused',
        );
        callback(error instanceof Error ? error : new Error(String(error)));
      },
    );
  };

  /** The SecureContext to serve for a server name; throws TlsError when there is none to serve. */
  async contextFor(servername: string): Promise<SecureContext> {
    const hostname = certificateName(servername);
    // Resolving may query corrosion: bounded like loads, so a flood of random names fails fast
    // instead of queueing queries without end.
    if (this.#resolving >= this.#options.loadsMax) {
      throw new TlsError('TLS_ERR_BUSY', `${this.#resolving} server names already resolving`);
    }
    this.#resolving += 1;
    let app: string | undefined;
    try {
      app = await this.#options.resolveApp(hostname);
    } finally {
      this.#resolving -= 1;
    }
    if (app === undefined) {
      throw new TlsError('TLS_ERR_UNKNOWN_SNI', `no app answers to ${hostname}`);
    }
    // After the await: the cache is read and used in one synchronous step.
    const cached = this.#contexts.get(hostname);
    const now = Date.now();
    if (cached !== undefined && cached.app === app && now < cached.notAfterMs - expiryMarginMs) {
      this.#contexts.delete(hostname);
      this.#contexts.set(hostname, cached); // most recently used last
      if (now >= cached.renewAtMs) {
        // The next try, should this one fail, waits: no renewal storm while corrosion is down.
        cached.renewAtMs = now + renewRetryMs;
        this.load(hostname, app).catch((error: unknown) => {
          this.#options.logger.warn(
            { err: error, serverName: hostname },
            'certificate renewal failed',
          );
        });
      }
      this.#options.metrics.certificateLookups.add(1, { source: 'cache' });
      return cached.context;
    }
    return this.load(hostname, app);
  }

  /** Drops a name's cached context (the catalog calls it when the certificates row changes). */
  invalidate(hostname: string): void {
    this.#contexts.delete(hostname);
  }

  stats(): { cached: number; loading: number; issuing: number; issued: number } {
    return {
      cached: this.#contexts.size,
      loading: this.#loads.size,
      issuing: this.#issuing,
      issued: this.#issued,
    };
  }

  /** One load per name at once, and a bounded number of names at once. */
  private load(hostname: string, app: string): Promise<SecureContext> {
    const running = this.#loads.get(hostname);
    if (running !== undefined) return running;
    if (this.#loads.size >= this.#options.loadsMax) {
      return Promise.reject(
        new TlsError('TLS_ERR_BUSY', `${this.#loads.size} certificate loads already in flight`),
      );
    }
    const loading = this.loadNow(hostname, app).finally(() => this.#loads.delete(hostname));
    this.#loads.set(hostname, loading);
    return loading;
  }

  private async loadNow(hostname: string, app: string): Promise<SecureContext> {
    const row = await this.#options.source.lookup(hostname);
    const stored = row === undefined ? undefined : this.parseRow(row, app);
    if (stored !== undefined && Date.now() < stored.renewAtMs) {
      this.remember(hostname, stored);
      this.#options.metrics.certificateLookups.add(1, { source: 'store' });
      return stored.context;
    }
    try {
      const issued = await this.issue(hostname, app);
      this.remember(hostname, issued);
      this.#options.metrics.certificateLookups.add(1, { source: 'issued' });
      return issued.context;
    } catch (error) {
      // A certificate due for renewal is still better than none while it is valid.
      if (stored !== undefined && Date.now() < stored.notAfterMs - expiryMarginMs) {
        this.#options.logger.warn(
          { err: error, serverName: hostname },
          'renewal failed; serving the old one',
        );
        this.remember(hostname, stored);
        return stored.context;
      }
      throw error;
    }
  }

  /** The row as an Entry, or undefined (logged, counted) when it cannot be served. */
  private parseRow(row: CertificateRow, app: string): Entry | undefined {
    try {
      const keyPem = openSealed(this.#options.fleetKey, row.sealedKey, row.hostname);
      const certificate = new X509Certificate(row.certPem);
      // Corrosion merges per column: two edges writing one name at once can leave one's
      // certificate beside the other's key. Such a row is replaced, not served.
      if (!certificate.checkPrivateKey(createPrivateKey(keyPem))) {
        throw new TlsError('TLS_ERR_STORED_CERT', 'the sealed key does not match the certificate');
      }
      if (certificate.checkHost(row.hostname) === undefined) {
        throw new TlsError('TLS_ERR_STORED_CERT', `the certificate does not name ${row.hostname}`);
      }
      const notAfterMs = Date.parse(certificate.validTo);
      if (!(notAfterMs > Date.now() + expiryMarginMs)) {
        throw new TlsError(
          'TLS_ERR_STORED_CERT',
          `the certificate expired (${certificate.validTo})`,
        );
      }
      const ours = certificate.checkIssued(this.#options.ca.certificate);
      return {
        app,
        context: createSecureContext({ cert: row.certPem, key: keyPem }),
        notAfterMs,
        renewAtMs: ours ? notAfterMs - this.#options.renewBeforeMs : Number.POSITIVE_INFINITY,
      };
    } catch (error) {
      this.#options.metrics.storedCertificatesRejected.add(1);
      this.#options.logger.warn(
        {
          serverName: row.hostname,
          code: (error as TlsError).code,
          reason: (error as Error).message,
        },
        'stored certificate cannot be used; issuing a new one',
      );
      return undefined;
    }
  }

  private async issue(hostname: string, app: string): Promise<Entry> {
    if (this.#issuing >= this.#options.issuancesMax) {
      throw new TlsError('TLS_ERR_BUSY', `${this.#issuing} certificate issuances already running`);
    }
    this.#issuing += 1;
    const started = performance.now();
    try {
      const issued = await this.#options.ca.issue(hostname, this.#options.leafValidityMs);
      await this.#options.source.save({
        hostname,
        app,
        certPem: issued.certPem,
        sealedKey: sealSecret(this.#options.fleetKey, Buffer.from(issued.keyPem), hostname),
        notAfter: issued.notAfter.toISOString(),
      });
      this.#issued += 1;
      this.#options.metrics.certificatesIssued.add(1);
      this.#options.metrics.issueMs.record(performance.now() - started);
      this.#options.logger.info(
        { serverName: hostname, app, notAfter: issued.notAfter.toISOString() },
        'certificate issued',
      );
      const notAfterMs = issued.notAfter.getTime();
      return {
        app,
        context: createSecureContext({ cert: issued.certPem, key: issued.keyPem }),
        notAfterMs,
        renewAtMs: notAfterMs - this.#options.renewBeforeMs,
      };
    } catch (error) {
      if (error instanceof TlsError) throw error;
      throw new TlsError('TLS_ERR_ISSUANCE', `issuing a certificate for ${hostname} failed`, {
        cause: error,
      });
    } finally {
      this.#issuing -= 1;
    }
  }

  private remember(hostname: string, entry: Entry): void {
    this.#contexts.delete(hostname);
    if (this.#contexts.size >= this.#options.contextsMax) {
      this.#contexts.delete(this.#contexts.keys().next().value as string);
    }
    this.#contexts.set(hostname, entry);
  }
}
