import type { CorrosionClient } from '@fleet/corrosion-client';
import { appSecretContext, sealSecret, secretDigest } from '@fleet/fleet-key';
import { flapsError, stateStoreCall } from './errors.js';

/** A secret as the API shows it (Fly's `AppSecret`): never its value. */
export interface SecretView {
  name: string;
  digest: string;
  created_at: string;
  updated_at: string;
}

/**
 * App secrets in corrosion's `app_secrets`: flaps seals each value with the fleet key before it
 * leaves the process, so corrosion (which replicates it to every host) only ever holds the
 * sealed value and a keyed digest. flaps never opens one; flyd does, when it starts a machine.
 */
export class SecretStore {
  constructor(
    private readonly corrosion: CorrosionClient,
    /** Without it the store lists but refuses writes (503 FLAPS_ERR_NO_FLEET_KEY). */
    private readonly fleetKey: Buffer | undefined,
  ) {}

  async list(app: string): Promise<SecretView[]> {
    return stateStoreCall(() =>
      this.corrosion.queryObjects<SecretView>([
        'SELECT name, digest, created_at, updated_at FROM app_secrets WHERE app = ? ORDER BY name',
        [app],
      ]),
    );
  }

  /**
   * Sets (a string) and unsets (null) secrets in one transaction; an unchanged value keeps its
   * row as it was (its `updated_at` too). Answers the app's secrets afterwards.
   */
  async update(app: string, values: Record<string, string | null>): Promise<SecretView[]> {
    const fleetKey = this.fleetKey;
    if (!fleetKey)
      throw flapsError(
        'FLAPS_ERR_NO_FLEET_KEY',
        'this flaps has no --fleet-key-file: it cannot seal secrets',
      );
    const now = new Date().toISOString();
    const statements: Array<[string, unknown[]]> = Object.entries(values).map(([name, value]) => {
      if (value === null)
        return ['DELETE FROM app_secrets WHERE app = ? AND name = ?', [app, name]];
      const context = appSecretContext(app, name);
      const plaintext = Buffer.from(value, 'utf8');
      const digest = secretDigest(fleetKey, plaintext, context);
      return [
        `INSERT INTO app_secrets (app, name, sealed, digest, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (app, name) DO UPDATE SET sealed = excluded.sealed, digest = excluded.digest,
           updated_at = excluded.updated_at
         WHERE app_secrets.digest <> excluded.digest`,
        [app, name, sealSecret(fleetKey, plaintext, context), digest, now, now],
      ];
    });
    if (statements.length > 0) await stateStoreCall(() => this.corrosion.transaction(statements));
    return this.list(app);
  }
}
