import type { CorrosionClient } from '@fleet/corrosion-client';
import { appSecretContext, FleetKeyError, openSealed } from '@fleet/fleet-key';
import { AbortStep } from '../fsm/engine.js';

/** Bound on reading an app's secrets from the local corrosion at a machine's start. */
const readTimeoutMs = 5_000;
/** Apps whose last sealed rows are remembered (the least recently read forgotten first). */
const appsRememberedMax = 10_000;

interface SealedRow {
  name: string;
  sealed: string;
}

/**
 * An app's secrets as its machines' environment. flaps stores them sealed with the fleet key
 * (corrosion's `app_secrets`); they are opened here, in memory, each time a machine of the app
 * is launched or an `exec` runs in it, and handed to the process's environment only: the
 * plaintext is never written to corrosion, to flyd.db (the FSM records the request, not the
 * environment) or to any file of this worker. Fly's host agent does the same at boot.
 */
export class AppSecrets {
  /**
   * The sealed rows last read per app — sealed, and in memory only: a restart by the policy
   * while the local corrosion is briefly away still gets the app's secrets (not a stale "none").
   */
  readonly #lastRows = new Map<string, SealedRow[]>();

  constructor(
    private readonly corrosion: CorrosionClient,
    /** `--fleet-key-file`; without it a machine whose app has secrets does not start. */
    private readonly fleetKey: Buffer | undefined,
  ) {}

  /**
   * The app's secrets by name. An unreachable corrosion gives the rows this flyd last read for
   * the app, and without any throws a plain error (the launch step is retried); a secret that
   * cannot be opened throws AbortStep (retrying cannot fix a key).
   */
  async env(app: string): Promise<Record<string, string>> {
    const rows = await this.#rows(app);
    if (rows.length === 0) return {};
    const fleetKey = this.fleetKey;
    if (!fleetKey)
      throw new AbortStep(
        `app ${app} has secrets, and this worker has no --fleet-key-file to open them`,
      );
    const env: Record<string, string> = {};
    for (const row of rows) {
      try {
        env[row.name] = openSealed(fleetKey, row.sealed, appSecretContext(app, row.name)).toString(
          'utf8',
        );
      } catch (error) {
        if (!(error instanceof FleetKeyError)) throw error;
        throw new AbortStep(`secret ${row.name} cannot be opened (${error.code})`, {
          cause: error,
        });
      }
    }
    return env;
  }

  async #rows(app: string): Promise<SealedRow[]> {
    let rows: SealedRow[];
    try {
      rows = await this.corrosion.queryObjects<SealedRow>(
        ['SELECT name, sealed FROM app_secrets WHERE app = ? ORDER BY name', [app]],
        { signal: AbortSignal.timeout(readTimeoutMs) },
      );
    } catch (error) {
      const remembered = this.#lastRows.get(app);
      if (remembered === undefined) throw error;
      return remembered;
    }
    this.#lastRows.delete(app); // re-inserted last: the map's order is the reading order
    this.#lastRows.set(app, rows);
    const oldest = this.#lastRows.keys().next();
    if (this.#lastRows.size > appsRememberedMax && !oldest.done)
      this.#lastRows.delete(oldest.value);
    return rows;
  }
}
