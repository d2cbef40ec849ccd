import { X509Certificate } from 'node:crypto';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FleetCa } from '../src/tls/ca.js';
import { loadOrCreateFleetCa } from '../src/tls/ca-files.js';
import { readFleetKeyFile } from '../src/tls/fleet-key.js';
import { openSealed, sealSecret } from '../src/tls/seal.js';

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
    const body = Buffer.from(parts[3]!, 'base64url');
    body[0] = body[0]! ^ 1;
    parts[3] = body.toString('base64url');
    expect(() => openSealed(fleetKey, parts.join('.'), 'web.fleet.test')).toThrow(
      expect.objectContaining({ code: 'TLS_ERR_UNSEAL' }),
    );
  });

  it('refuses another fleet key and another context, without the plaintext in the error', () => {
    const sealed = sealSecret(fleetKey, secret, 'web.fleet.test');
    const otherKey = Buffer.from('another-fleet-key-0123456789abcd');
    let message = '';
    try {
      openSealed(otherKey, sealed, 'web.fleet.test');
    } catch (error) {
      expect(error).toMatchObject({ code: 'TLS_ERR_UNSEAL' });
      message = (error as Error).message;
    }
    expect(message).not.toContain('PRIVATE');
    expect(() => openSealed(fleetKey, sealed, 'evil.fleet.test')).toThrow(
      expect.objectContaining({ code: 'TLS_ERR_UNSEAL' }),
    );
  });

  it('refuses unknown versions and malformed values', () => {
    const sealed = sealSecret(fleetKey, secret, 'a.test');
    expect(() => openSealed(fleetKey, sealed.replace(/^fk1/, 'fk9'), 'a.test')).toThrow(
      expect.objectContaining({ code: 'TLS_ERR_SEALED_FORMAT' }),
    );
    expect(() => openSealed(fleetKey, 'plain text', 'a.test')).toThrow(
      expect.objectContaining({ code: 'TLS_ERR_SEALED_FORMAT' }),
    );
  });

  it('reads the fleet key file as corrosion does, refusing short keys', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleet-key-'));
    writeFileSync(join(dir, 'fleet.key'), 'test-fleet-key-0123456789abcdef\n');
    writeFileSync(join(dir, 'short.key'), 'short');
    expect(readFleetKeyFile(join(dir, 'fleet.key'))).toEqual(fleetKey);
    expect(() => readFleetKeyFile(join(dir, 'short.key'))).toThrow(
      expect.objectContaining({ code: 'TLS_ERR_FLEET_KEY' }),
    );
    expect(() => readFleetKeyFile(join(dir, 'missing.key'))).toThrow(
      expect.objectContaining({ code: 'TLS_ERR_FLEET_KEY' }),
    );
  });
});

// The fleet CA: issued leaves chain to it, name exactly one host, and are short-lived ECDSA P-256;
// the CA files are created once and then shared, even by proxies starting together.
describe('the fleet CA', () => {
  it('issues a P-256 leaf for one name that chains to the CA', async () => {
    const { ca } = await FleetCa.generate({ commonName: 'Test CA' });
    const issued = await ca.issue('web.fleet.test', 3_600_000);
    const leaf = new X509Certificate(issued.certPem);
    expect(leaf.subjectAltName).toBe('DNS:web.fleet.test');
    expect(leaf.checkIssued(ca.certificate)).toBe(true);
    expect(leaf.verify(ca.certificate.publicKey)).toBe(true);
    expect(leaf.ca).toBe(false);
    expect(leaf.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(Date.parse(leaf.validTo)).toBe(issued.notAfter.getTime());
    expect(issued.notAfter.getTime() - Date.now()).toBeLessThanOrEqual(3_600_000);
  });

  it('creates the CA files once; concurrent starts agree on one CA; a foreign key is refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleet-ca-'));
    const files = { certFile: join(dir, 'ca.pem'), keyFile: join(dir, 'ca.key') };
    const cas = await Promise.all([1, 2, 3].map(() => loadOrCreateFleetCa(files)));
    expect(new Set(cas.map((ca) => ca.certPem)).size).toBe(1);
    expect(statSync(files.keyFile).mode & 0o777).toBe(0o600);
    const again = await loadOrCreateFleetCa(files);
    expect(again.certPem).toBe(cas[0]!.certPem);
    const { keyPem } = await FleetCa.generate();
    await expect(FleetCa.fromPem(cas[0]!.certPem, keyPem)).rejects.toMatchObject({
      code: 'TLS_ERR_CA',
    });
  });
});
