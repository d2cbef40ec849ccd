import { createHash, randomBytes } from 'node:crypto';
import { authorizationMatches } from '@fleet/service';
import { flapsError } from './errors.js';
import type { FleetState } from './state.js';

/** Who a call comes from: the operator (every organization) or one organization's token. */
export type Principal = { operator: true } | { operator: false; org: string };

const cacheMs = 5_000;

export const sha256 = (token: string) => createHash('sha256').update(token).digest('hex');

/** A new organization token: shown once; only its SHA-256 is stored. */
export function newToken(): string {
  return `fo1_${randomBytes(32).toString('base64url')}`;
}

/**
 * Tells who a call is from. The operator token (`--token`) reaches everything; an organization
 * token (`Bearer` or Fly's `FlyV1` scheme) is looked up by its SHA-256 in corrosion's
 * `org_tokens`, with answers cached for 5 s (so a revoked token stops working within 5 s).
 */
export class Authenticator {
  readonly #cache = new Map<string, { org: string | undefined; until: number }>();

  constructor(
    private readonly operatorToken: string,
    private readonly state: FleetState,
  ) {}

  async identify(header: string | undefined): Promise<Principal> {
    if (authorizationMatches(header, this.operatorToken, ['Bearer', 'FlyV1'])) {
      return { operator: true };
    }
    const token = /^(?:Bearer|FlyV1)\s+(\S+)$/i.exec(header ?? '')?.[1];
    if (token === undefined)
      throw flapsError('FLAPS_ERR_UNAUTHORIZED', 'missing or wrong API token');
    const hash = sha256(token);
    const now = Date.now();
    let cached = this.#cache.get(hash);
    if (!cached || cached.until < now) {
      cached = { org: await this.state.tokenOrg(hash), until: now + cacheMs };
      if (this.#cache.size > 10_000) this.#cache.clear();
      this.#cache.set(hash, cached);
    }
    if (cached.org === undefined) {
      throw flapsError('FLAPS_ERR_UNAUTHORIZED', 'missing or wrong API token');
    }
    return { operator: false, org: cached.org };
  }

  /** Forgets cached answers (after a revoke on this instance). */
  forget(): void {
    this.#cache.clear();
  }
}

/** The organization a call may act on: its token's, or the one named by the operator. */
export function orgFor(principal: Principal, asked: string | undefined): string | undefined {
  if (principal.operator) return asked;
  if (asked !== undefined && asked !== principal.org) {
    throw flapsError('FLAPS_ERR_ORG_NOT_FOUND', `organization ${asked} not found`);
  }
  return principal.org;
}

export function requireOperator(principal: Principal): void {
  if (!principal.operator) {
    throw flapsError('FLAPS_ERR_UNAUTHORIZED', 'this call needs the operator token');
  }
}
