import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { present } from '@fleet/service/invariant';
import { describe, expect, it } from 'vitest';
import { openSealed, readFleetKeyFile, sealSecret, secretDigest } from '../src/index.js';

const fleetKey = Buffer.from('test-fleet-key-0123456789abcdef');
const secret = Buffer.from('-----BEGIN PRIVATE KEY-----\nnot really\n-----END PRIVATE KEY-----\n');

// Sealing with the fleet key: what one edge seals, any edge with the same key opens, and nothing
// else does — a flipped bit, another key, or another row's context all fail authentication.
describe('sealing with the fleet key', () => {
  it('round-trips, with a fresh salt and IV each time, never showing the plaintext', () => {
    const first = sealSecret(fleetKey, secret, 'web.fleet.test');
    const second = sealSecret(fleetKey, secret, 'web.fleet.test');
    expect(first).not.toBe(second);
    expect(first.startsWith('fk1.')).toBe(true);
    expect(first).not.toContain('PRIVATE KEY');
    expect(openSealed(fleetKey, first, 'web.fleet.test')).toEqual(secret);
    expect(openSealed(fleetKey, second, 'web.fleet.test')).toEqual(secret);
  });

  it('refuses a tampered value', () => {
    const sealed = sealSecret(fleetKey, secret, 'web.fleet.test');
    const parts = sealed.split('.');
    const body = Buffer.from(present(parts[3], 'the ciphertext'), 'base64url');
    body[0] = present(body[0], 'its first byte') ^ 1;
    parts[3] = body.toString('base64url');
    expect(() => openSealed(fleetKey, parts.join('.'), 'web.fleet.test')).toThrow(
      expect.objectContaining({ code: 'FLEET_KEY_ERR_UNSEAL' }),
    );
  });

  it('refuses another fleet key and another context, without the plaintext in the error', () => {
    const sealed = sealSecret(fleetKey, secret, 'web.fleet.test');
    const otherKey = Buffer.from('another-fleet-key-0123456789abcd');
    let message = '';
    try {
      openSealed(otherKey, sealed, 'web.fleet.test');
    } catch (error) {
      expect(error).toMatchObject({ code: 'FLEET_KEY_ERR_UNSEAL' });
      message = (error as Error).message;
    }
    expect(message).not.toContain('PRIVATE');
    expect(() => openSealed(fleetKey, sealed, 'evil.fleet.test')).toThrow(
      expect.objectContaining({ code: 'FLEET_KEY_ERR_UNSEAL' }),
    );
  });

  it('refuses unknown versions and malformed values', () => {
    const sealed = sealSecret(fleetKey, secret, 'a.test');
    expect(() => openSealed(fleetKey, sealed.replace(/^fk1/, 'fk9'), 'a.test')).toThrow(
      expect.objectContaining({ code: 'FLEET_KEY_ERR_SEALED_FORMAT' }),
    );
    expect(() => openSealed(fleetKey, 'plain text', 'a.test')).toThrow(
      expect.objectContaining({ code: 'FLEET_KEY_ERR_SEALED_FORMAT' }),
    );
  });

  it('reads the fleet key file as corrosion does, refusing short keys', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleet-key-'));
    try {
      writeFileSync(join(dir, 'fleet.key'), 'test-fleet-key-0123456789abcdef\n');
      writeFileSync(join(dir, 'short.key'), 'short');
      expect(readFleetKeyFile(join(dir, 'fleet.key'))).toEqual(fleetKey);
      expect(() => readFleetKeyFile(join(dir, 'short.key'))).toThrow(
        expect.objectContaining({ code: 'FLEET_KEY_ERR_FILE' }),
      );
      expect(() => readFleetKeyFile(join(dir, 'missing.key'))).toThrow(
        expect.objectContaining({ code: 'FLEET_KEY_ERR_FILE' }),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// The digest `secrets list` shows: stable for one value, different for another value, another
// secret or another fleet key, and never the value itself.
describe('secret digests', () => {
  it('tell values apart without showing them', () => {
    const value = Buffer.from('hunter2');
    const digest = secretDigest(fleetKey, value, 'app-secret:shop/TOKEN');
    expect(digest).toMatch(/^[0-9a-f]{32}$/);
    expect(secretDigest(fleetKey, value, 'app-secret:shop/TOKEN')).toBe(digest);
    expect(secretDigest(fleetKey, Buffer.from('hunter3'), 'app-secret:shop/TOKEN')).not.toBe(
      digest,
    );
    expect(secretDigest(fleetKey, value, 'app-secret:shop/OTHER')).not.toBe(digest);
    const otherKey = Buffer.from('another-fleet-key-0123456789abcd');
    expect(secretDigest(otherKey, value, 'app-secret:shop/TOKEN')).not.toBe(digest);
    expect(digest).not.toContain(value.toString('hex'));
  });
});
