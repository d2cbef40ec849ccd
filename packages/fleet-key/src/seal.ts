import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { FleetKeyError } from './errors.js';

/**
 * Sealing secrets (certificate keys, app secrets) with the fleet key, so they can travel through
 * corrosion, which replicates every row to every host. Format v1, one text value:
 *
 *   fk1.<salt>.<iv>.<ciphertext>.<tag>        (each part base64url)
 *
 * The AES-256-GCM key is HKDF-SHA256(fleet key, salt, "fleet/seal/v1"), with a fresh 16-byte salt
 * per sealed value, so no two values share a key and the 96-bit random IV never repeats under one
 * key. The associated data binds the value to its version and to a context (the certificate's
 * hostname, the app and secret name): a value copied into another row does not open. The version prefix lets a later
 * format coexist with rows written by older proxies.
 */
const version = 'fk1';
const saltBytes = 16;
const ivBytes = 12;
const tagBytes = 16;

export function sealSecret(fleetKey: Buffer, plaintext: Buffer, context: string): string {
  const salt = randomBytes(saltBytes);
  const iv = randomBytes(ivBytes);
  const cipher = createCipheriv('aes-256-gcm', deriveKey(fleetKey, salt), iv);
  cipher.setAAD(associatedData(context));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  const parts = [salt, iv, ciphertext, cipher.getAuthTag()].map((part) =>
    part.toString('base64url'),
  );
  return [version, ...parts].join('.');
}

/** Opens a sealed value; throws FLEET_KEY_ERR_SEALED_FORMAT or _UNSEAL (never the plaintext). */
export function openSealed(fleetKey: Buffer, sealed: string, context: string): Buffer {
  const parts = sealed.split('.');
  if (parts[0] !== version || parts.length !== 5) {
    throw new FleetKeyError(
      'FLEET_KEY_ERR_SEALED_FORMAT',
      `sealed value has version "${(parts[0] ?? '').slice(0, 8)}" and ${parts.length} parts; expected ${version} with 5`,
    );
  }
  const [salt, iv, ciphertext, tag] = parts.slice(1).map((part) => Buffer.from(part, 'base64url'));
  if (
    salt?.length !== saltBytes ||
    iv?.length !== ivBytes ||
    tag?.length !== tagBytes ||
    ciphertext === undefined
  ) {
    throw new FleetKeyError(
      'FLEET_KEY_ERR_SEALED_FORMAT',
      'sealed value has a salt, IV or tag of bad size',
    );
  }
  const decipher = createDecipheriv('aes-256-gcm', deriveKey(fleetKey, salt), iv);
  decipher.setAAD(associatedData(context));
  decipher.setAuthTag(tag);
  try {
    return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  } catch (error) {
    throw new FleetKeyError(
      'FLEET_KEY_ERR_UNSEAL',
      `sealed value for "${context}" failed authentication (tampered, or another fleet key)`,
      { cause: error },
    );
  }
}

function deriveKey(fleetKey: Buffer, salt: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', fleetKey, salt, 'fleet/seal/v1', 32));
}

function associatedData(context: string): Buffer {
  return Buffer.from(`${version}|${context}`, 'utf8');
}
