import type { WatchEvent } from '@fleet/corrosion-client';
import { describe, expect, it } from 'vitest';
import { Catalog } from '../src/index.js';

const quiet = { warn: () => undefined, error: () => undefined };
const http = JSON.stringify([{ port: 80, handlers: ['http'] }]);

const row = (cells: unknown[]): WatchEvent => ({ type: 'row', rowid: 0, cells });
const change = (kind: 'insert' | 'update' | 'delete', cells: unknown[]): WatchEvent => ({
  type: 'change',
  kind,
  rowid: 0,
  cells,
  changeId: 1,
});

async function loaded(): Promise<Catalog> {
  const catalog = new Catalog({ domain: 'fleet.test', logger: quiet });
  await catalog.apply('apps', row(['web', 'personal']));
  await catalog.apply(
    'machines',
    row(['m1', 'web', 'started', '127.0.0.1:1001', 'ams', 'h1', 'i1']),
  );
  await catalog.apply(
    'machines',
    row(['m2', 'web', 'started', '127.0.0.1:1002', 'ams', 'h1', 'i2']),
  );
  await catalog.apply('services', row(['m1', 8080, 'web', 'tcp', http]));
  await catalog.apply('services', row(['m2', 8080, 'web', 'tcp', http]));
  for (const table of ['apps', 'app_hostnames', 'machines', 'services', 'health_checks'] as const) {
    await catalog.apply(table, { type: 'ready', changeId: 0 });
  }
  return catalog;
}

// The Catalog turns corrosion rows into routing decisions, one table event at a time.
describe('Catalog', () => {
  it('resolves hosts by domain and by app_hostnames', async () => {
    const catalog = await loaded();
    expect(await catalog.resolveHost('web.fleet.test:8080')).toBe('web');
    expect(await catalog.resolveHost('WEB.Fleet.Test.')).toBe('web');
    expect(await catalog.resolveHost('a.b.fleet.test')).toBeUndefined();
    await catalog.apply('app_hostnames', change('insert', ['www.example.com', 'web']));
    expect(await catalog.resolveHost('www.example.com')).toBe('web');
  });

  it('round-robins over started machines with an HTTP service', async () => {
    const catalog = await loaded();
    expect(catalog.ready).toBe(true);
    const picked = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const decision = await catalog.route('web');
      if (decision.kind === 'ok') picked.add(decision.machine.id);
    }
    expect([...picked].sort()).toEqual(['m1', 'm2']);
    expect(await catalog.route('nope')).toEqual({ kind: 'no-app' });
  });

  it('stops routing to stopped, deleted and critical machines, and says why', async () => {
    const catalog = await loaded();
    await catalog.apply(
      'machines',
      change('update', ['m1', 'web', 'stopped', '127.0.0.1:1001', 'ams', 'h1', 'i1']),
    );
    await catalog.apply('health_checks', change('insert', ['m2', 'alive', 'critical']));
    const decision = await catalog.route('web');
    expect(decision).toMatchObject({ kind: 'no-machine' });
    expect(decision.kind === 'no-machine' && decision.reason).toMatch(
      /no started machine.*1 stopped, 1 started/,
    );
    await catalog.apply('health_checks', change('update', ['m2', 'alive', 'passing']));
    expect(await catalog.route('web')).toMatchObject({ kind: 'ok', machine: { id: 'm2' } });
    await catalog.apply(
      'machines',
      change('delete', ['m2', 'web', 'started', '127.0.0.1:1002', 'ams', 'h1', 'i2']),
    );
    expect(await catalog.route('web')).toMatchObject({ kind: 'no-machine' });
  });

  // Seed 002: one poisonous row is skipped and counted; the table keeps serving.
  it('skips a malformed row without losing the rest', async () => {
    const warnings: object[] = [];
    const catalog = new Catalog({
      domain: 'fleet.test',
      logger: { warn: (details) => warnings.push(details), error: () => undefined },
    });
    await catalog.apply('apps', row(['web', 'personal']));
    await catalog.apply(
      'machines',
      row(['m1', 'web', 'started', '127.0.0.1:1001', 'ams', 'h1', 'i1']),
    );
    await catalog.apply('services', row(['m1', 8080, 'web', 'tcp', '{not json']));
    await catalog.apply('services', row(['m1', 9090, 'web', 'tcp', http]));
    expect(await catalog.route('web')).toMatchObject({ kind: 'ok' });
    expect((await catalog.stats()).rejectedRows).toBe(1);
    expect(warnings).toHaveLength(1);
  });

  it('forgets a table on reset and is not ready until it reloads', async () => {
    const catalog = await loaded();
    await catalog.apply('machines', { type: 'reset', columns: [] });
    expect(catalog.ready).toBe(false);
    expect(await catalog.route('web')).toMatchObject({ kind: 'no-machine' });
  });
});
