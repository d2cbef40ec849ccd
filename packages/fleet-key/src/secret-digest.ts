import { createHmac } from 'node:crypto';

/**
 * The digest `secrets list` shows beside a secret's name (flyctl shows one too): it tells two
 * values apart without revealing either. Keyed with the fleet key (HMAC-SHA256), not a plain
 * hash: the digest replicates to every host with the sealed value, and a plain hash of a short
 * secret is guessed by hashing candidates. Bound to the context, so equal values of two secrets
 * do not show equal digests. 16 bytes, hex.
 */
export function secretDigest(fleetKey: Buffer, value: Buffer, context: string): string {
  return createHmac('sha256', fleetKey)
    .update(`fleet/digest/v1|${context}|`)
    .update(value)
    .digest('hex')
    .slice(0, 32);
}

/**
 * The context an app secret is sealed and digested under: its app and name, so a sealed value
 * copied into another app's or another name's row does not open. flaps seals, flyd opens.
 */
export function appSecretContext(app: string, name: string): string {
  return `app-secret:${app}/${name}`;
}
