import { X509Certificate } from 'node:crypto';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { present } from '@fleet/service/invariant';
import { describe, expect, it } from 'vitest';
import { FleetCa } from '../src/tls/ca.js';
import { loadOrCreateFleetCa } from '../src/tls/ca-files.js';

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
    const [first] = cas;
    expect(again.certPem).toBe(first?.certPem);
    const { keyPem } = await FleetCa.generate();
    await expect(FleetCa.fromPem(present(first, 'the CA').certPem, keyPem)).rejects.toMatchObject({
      code: 'TLS_ERR_CA',
    });
  });
});
