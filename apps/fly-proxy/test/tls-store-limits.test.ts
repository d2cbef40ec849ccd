import { describe, expect, it } from 'vitest';
import { FleetCa } from '../src/tls/ca.js';
import type { CertificateStoreOptions } from '../src/tls/store.js';
import { memoryStore as fixtureStore } from './tls-fixture.js';

const { ca } = await FleetCa.generate();

const memoryStore = (options: Partial<CertificateStoreOptions> = {}) => fixtureStore(ca, options);

// The store's bounds hold: past the number of issuances, loads or name resolutions in flight a
// handshake fails at once with TLS_ERR_BUSY instead of waiting, and the cache keeps at most
// contextsMax certificates in memory (the rows stay in the source).
describe('certificate store limits', () => {
  it('fails fast past the bound on issuances in flight', async () => {
    const { store } = memoryStore({ issuancesMax: 1 });
    const results = await Promise.allSettled([
      store.contextFor('one.fleet.test'),
      store.contextFor('two.fleet.test'),
    ]);
    expect(results[0]?.status).toBe('fulfilled');
    expect(results[1]).toMatchObject({ status: 'rejected', reason: { code: 'TLS_ERR_BUSY' } });
    // Once the first is done, the second name is served.
    await expect(store.contextFor('two.fleet.test')).resolves.toBeDefined();
  });

  it('fails fast past the bound on names loading or resolving at once', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const { store } = memoryStore({
      loadsMax: 2,
      resolveApp: async () => {
        await gate;
        return 'web';
      },
    });
    const pending = ['a', 'b', 'c'].map((name) => store.contextFor(`${name}.fleet.test`));
    await expect(pending[2]).rejects.toMatchObject({ code: 'TLS_ERR_BUSY' });
    release();
    await expect(Promise.all(pending.slice(0, 2))).resolves.toHaveLength(2);
  });

  it('keeps at most contextsMax certificates in memory, the rest served from the source', async () => {
    const { store, rows } = memoryStore({ contextsMax: 2 });
    for (const name of ['a', 'b', 'c']) await store.contextFor(`${name}.fleet.test`);
    expect(store.stats()).toMatchObject({ cached: 2, issued: 3 });
    expect(rows.size).toBe(3);
    await store.contextFor('a.fleet.test'); // evicted, found in the source, not issued again
    expect(store.stats()).toMatchObject({ cached: 2, issued: 3 });
  });

  it('refuses names that are not DNS names before asking anyone', async () => {
    let asked = 0;
    const { store } = memoryStore({
      resolveApp: async () => {
        asked += 1;
        return 'web';
      },
    });
    for (const bad of ['', '127.0.0.1', 'nodots', '*.fleet.test', `${'a'.repeat(64)}.fleet.test`]) {
      await expect(store.contextFor(bad)).rejects.toMatchObject({
        code: expect.stringMatching(/TLS_ERR_(NO|BAD)_SNI/),
      });
    }
    expect(asked).toBe(0);
  });
});
