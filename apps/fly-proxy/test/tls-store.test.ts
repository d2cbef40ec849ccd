import { createPrivateKey, X509Certificate } from 'node:crypto';
import { connect as connectHttp2 } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import type { CorrosionClient } from '@fleet/corrosion-client';
import { openSealed } from '@fleet/fleet-key';
import type { ServerProcess } from '@fleet/service';
import { present } from '@fleet/service/invariant';
import { until } from '@fleet/service/vitest-until';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { FleetCa } from '../src/tls/ca.js';
import type { CertificateStore } from '../src/tls/store.js';
import { corrosionStore, fleetKey, handshake, startCorrosion, tlsEdge } from './tls-fixture.js';

interface Row {
  hostname: string;
  app: string;
  cert_pem: string;
  sealed_key: string;
  not_after: string;
}

// Two edges' certificate stores over one real corrosion agent, each behind a real TLS listener:
// certificates are issued on demand by the fleet CA, written sealed to corrosion, and served by
// every edge; names no app answers to, and old TLS versions, never complete a handshake.
describe('TLS certificates by SNI over corrosion', () => {
  let agent: ServerProcess;
  let client: CorrosionClient;
  let ca: FleetCa;
  let edgeA: {
    store: CertificateStore;
    saves: () => number;
    port: number;
    close: () => Promise<void>;
  };
  let edgeB: typeof edgeA;

  const rows = (hostname: string) =>
    client.queryObjects<Row>([
      'SELECT hostname, app, cert_pem, sealed_key, not_after FROM certificates WHERE hostname = ?',
      [hostname],
    ]);

  const startEdge = async () => {
    const { store, saves } = corrosionStore(client, ca);
    const { listener, port } = await tlsEdge(store);
    return { store, saves, port, close: () => listener.close() };
  };

  beforeAll(async () => {
    ({ agent, client } = await startCorrosion());
    ca = (await FleetCa.generate({ commonName: 'Fleet Test CA' })).ca;
    await client.transaction([
      "INSERT INTO apps (name) VALUES ('web')",
      "INSERT INTO apps (name) VALUES ('api')",
      "INSERT INTO app_hostnames (hostname, app) VALUES ('www.example.test', 'web')",
    ]);
    edgeA = await startEdge();
    edgeB = await startEdge();
  });

  afterAll(async () => {
    await edgeA?.close();
    await edgeB?.close();
    await client?.close();
    await agent?.stop();
  });

  it('issues a certificate on the first handshake, chained to the fleet CA and naming the host', async () => {
    const seen = await handshake(edgeA.port, 'web.fleet.test', { ca: ca.certPem });
    expect(seen.authorized).toBe(true);
    const leaf = new X509Certificate(seen.certificate.raw);
    expect(leaf.subjectAltName).toBe('DNS:web.fleet.test');
    expect(leaf.checkIssued(ca.certificate)).toBe(true);
    expect(leaf.verify(ca.certificate.publicKey)).toBe(true);
    const row = present((await rows('web.fleet.test'))[0], "web's certificates row");
    expect(row).toMatchObject({ app: 'web' });
    expect(Date.parse(row.not_after)).toBe(Date.parse(leaf.validTo));
    expect(new X509Certificate(row.cert_pem).fingerprint256).toBe(leaf.fingerprint256);
    expect(edgeA.saves()).toBe(1);
  });

  it('keeps the private key sealed in corrosion: not the PEM, and only the fleet key opens it', async () => {
    await handshake(edgeA.port, 'www.example.test', { ca: ca.certPem });
    const row = present((await rows('www.example.test'))[0], "www's certificates row");
    expect(row).toMatchObject({ app: 'web' });
    expect(row.sealed_key).not.toContain('PRIVATE KEY');
    expect(row.sealed_key.startsWith('fk1.')).toBe(true);
    const keyPem = openSealed(fleetKey, row.sealed_key, 'www.example.test').toString();
    expect(new X509Certificate(row.cert_pem).checkPrivateKey(createPrivateKey(keyPem))).toBe(true);
  });

  it('issues exactly once when 50 handshakes for a new name arrive at once', async () => {
    const before = edgeA.store.stats().issued;
    const seen = await Promise.all(
      Array.from({ length: 50 }, () => handshake(edgeA.port, 'api.fleet.test', { ca: ca.certPem })),
    );
    expect(seen.every((each) => each.authorized)).toBe(true);
    expect(new Set(seen.map((each) => each.certificate.fingerprint256)).size).toBe(1);
    expect(edgeA.store.stats().issued - before).toBe(1);
    expect(await rows('api.fleet.test')).toHaveLength(1);
  });

  it('serves on a second edge the certificate the first issued, without issuing again', async () => {
    const fromA = await handshake(edgeA.port, 'web.fleet.test', { ca: ca.certPem });
    const fromB = await handshake(edgeB.port, 'web.fleet.test', { ca: ca.certPem });
    expect(fromB.authorized).toBe(true);
    expect(fromB.certificate.fingerprint256).toBe(fromA.certificate.fingerprint256);
    expect(edgeB.store.stats().issued).toBe(0);
    expect(edgeB.saves()).toBe(0);
  });

  it('fails the handshake for an unknown name, a name of no app, and no SNI, writing nothing', async () => {
    for (const name of ['nobody.fleet.test', 'example.org', 'a.b.fleet.test']) {
      await expect(handshake(edgeA.port, name)).rejects.toThrow();
    }
    await expect(handshake(edgeA.port, undefined)).rejects.toThrow();
    const all = await client.queryObjects<{ hostname: string }>(
      'SELECT hostname FROM certificates ORDER BY hostname',
    );
    expect(all.map((row) => row.hostname)).not.toContain('nobody.fleet.test');
    expect(all.map((row) => row.hostname)).not.toContain('example.org');
  });

  it('refuses TLS 1.1 and speaks TLS 1.3 by default', async () => {
    // SECLEVEL=0 lets the client offer TLS 1.1, so the refusal is the server's.
    await expect(
      handshake(edgeA.port, 'web.fleet.test', {
        minVersion: 'TLSv1.1',
        maxVersion: 'TLSv1.1',
        ciphers: 'DEFAULT@SECLEVEL=0',
      }),
    ).rejects.toMatchObject({ code: expect.stringMatching(/ALERT_PROTOCOL_VERSION|UNSUPPORTED/) });
    const modern = await handshake(edgeA.port, 'web.fleet.test', { ca: ca.certPem });
    expect(modern.protocol).toBe('TLSv1.3');
    const twelve = await handshake(edgeA.port, 'web.fleet.test', {
      ca: ca.certPem,
      maxVersion: 'TLSv1.2',
    });
    expect(twelve.protocol).toBe('TLSv1.2');
  });

  it('speaks h2 by ALPN and HTTP/1.1 on the same port', async () => {
    const session = connectHttp2(`https://127.0.0.1:${edgeA.port}`, {
      ca: ca.certPem,
      servername: 'web.fleet.test',
    });
    const h2Body = await new Promise<string>((resolve, reject) => {
      const stream = session.request({ ':path': '/over-h2', ':authority': 'web.fleet.test' });
      let body = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        body += chunk;
      });
      stream.on('end', () => resolve(body));
      stream.on('error', reject);
      stream.end();
    });
    expect(session.alpnProtocol).toBe('h2');
    session.close();
    expect(h2Body).toBe('2.0 web.fleet.test /over-h2');
    const h1Body = await new Promise<string>((resolve, reject) => {
      const request = httpsRequest(
        {
          host: '127.0.0.1',
          port: edgeA.port,
          servername: 'web.fleet.test',
          path: '/over-h1',
          headers: { host: 'web.fleet.test' },
          ca: ca.certPem,
        },
        (response) => {
          let body = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => {
            body += chunk;
          });
          response.on('end', () => resolve(body));
        },
      );
      request.on('error', reject);
      request.end();
    });
    expect(h1Body).toBe('1.1 web.fleet.test /over-h1');
  });

  it('replaces a row whose key does not belong to its certificate (a per-column merge of two writers)', async () => {
    await handshake(edgeA.port, 'api.fleet.test', { ca: ca.certPem });
    const api = present((await rows('api.fleet.test'))[0], "api's certificates row");
    const web = present((await rows('web.fleet.test'))[0], "web's certificates row");
    // web's sealed key is sealed for web's name; re-seal nothing, just pair api's cert with a
    // key from another writer by copying web's certificate over api's row.
    await client.transaction([
      ['UPDATE certificates SET cert_pem = ? WHERE hostname = ?', [web.cert_pem, 'api.fleet.test']],
    ]);
    const third = corrosionStore(client, ca);
    const { listener, port } = await tlsEdge(third.store);
    try {
      const seen = await handshake(port, 'api.fleet.test', { ca: ca.certPem });
      expect(seen.authorized).toBe(true);
      expect(new X509Certificate(seen.certificate.raw).subjectAltName).toBe('DNS:api.fleet.test');
      expect(third.saves()).toBe(1);
      const [healed] = await rows('api.fleet.test');
      expect(healed?.cert_pem).not.toBe(api.cert_pem);
      expect(healed?.cert_pem).not.toBe(web.cert_pem);
    } finally {
      await listener.close();
    }
  });

  it('renews a certificate of the fleet CA once it is within renewBeforeMs of expiry', async () => {
    const renewing = corrosionStore(client, ca, {
      leafValidityMs: 120_000,
      renewBeforeMs: 119_000,
    });
    await client.transaction(["INSERT INTO apps (name) VALUES ('short')"]);
    const first = await renewing.store.contextFor('short.fleet.test');
    expect(renewing.saves()).toBe(1);
    // 1.1 s on, by the clock the store reads (Date only: timers and sockets keep real time).
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.now() + 1_100);
      // Due for renewal but still valid: served at once while a new one is issued behind it.
      expect(await renewing.store.contextFor('short.fleet.test')).toBe(first);
      await until('the renewed certificate saved', () => renewing.saves() >= 2);
      expect(renewing.saves()).toBe(2);
      expect(await renewing.store.contextFor('short.fleet.test')).not.toBe(first);
    } finally {
      vi.useRealTimers();
    }
  });
});
