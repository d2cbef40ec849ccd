import { describe, expect, it } from 'vitest';
import { Catalog } from '../src/index.js';
import { catalogWith, change, machineCells, row } from './fixtures.js';

const http = JSON.stringify([{ port: 80, handlers: ['http'] }]);

// The Catalog turns corrosion rows into routing decisions, one table event at a time.
describe('Catalog', () => {
  it('resolves hosts by domain and by app_hostnames', async () => {
    const catalog = await catalogWith([{ id: 'm1' }]);
    expect(await catalog.resolveHost('web.fleet.test:8080')).toBe('web');
    expect(await catalog.resolveHost('WEB.Fleet.Test.')).toBe('web');
    expect(await catalog.resolveHost('a.b.fleet.test')).toBeUndefined();
    expect(await catalog.resolveHost('WEB.fleet.test.:443')).toBe('web');
    expect(await catalog.resolveHost('web.fleet.test.:')).toBeUndefined();
    expect(await catalog.resolveHost('.fleet.test')).toBeUndefined();
    expect(await catalog.resolveHost('fleet.test:80')).toBeUndefined();
    await catalog.apply('app_hostnames', change('insert', ['www.example.com', 'web']));
    expect(await catalog.resolveHost('www.example.com')).toBe('web');
    await catalog.apply('app_hostnames', change('delete', ['www.example.com', 'web']));
    expect(await catalog.resolveHost('www.example.com')).toBeUndefined();
  });

  it('routes to started machines with an HTTP service and says no-app for unknown apps', async () => {
    const catalog = await catalogWith([{ id: 'm1' }, { id: 'm2' }]);
    expect(catalog.ready).toBe(true);
    const picked = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const decision = await catalog.route('web');
      if (decision.kind === 'ok') picked.add(decision.machine.id);
    }
    expect([...picked].sort()).toEqual(['m1', 'm2']);
    expect(await catalog.route('nope')).toEqual({ kind: 'no-app' });
  });

  it('stops routing to stopped, deleted and critical machines, and says why', async () => {
    const catalog = await catalogWith([{ id: 'm1' }, { id: 'm2' }]);
    await catalog.apply(
      'machines',
      change('update', machineCells({ id: 'm1', state: 'stopped' }).machine),
    );
    await catalog.apply('health_checks', change('insert', ['m2', 'alive', 'critical']));
    const decision = await catalog.route('web');
    expect(decision).toMatchObject({ kind: 'no-machine', saturated: false });
    expect(decision.kind === 'no-machine' && decision.reason).toMatch(
      /no started machine.*1 stopped, 1 started/,
    );
    await catalog.apply('health_checks', change('update', ['m2', 'alive', 'passing']));
    expect(await catalog.route('web')).toMatchObject({ kind: 'ok', machine: { id: 'm2' } });
    await catalog.apply('machines', change('delete', machineCells({ id: 'm2' }).machine));
    expect(await catalog.route('web')).toMatchObject({ kind: 'no-machine' });
  });

  it('keeps a health check that arrives before its machine (eager streams come in any order)', async () => {
    const catalog = await catalogWith([]);
    await catalog.apply('apps', row(['late', 'personal', 'default']));
    await catalog.apply('health_checks', row(['m9', 'alive', 'critical']));
    const cells = machineCells({ id: 'm9', app: 'late' });
    await catalog.apply('machines', row(cells.machine));
    await catalog.apply('services', row(cells.service));
    expect(await catalog.route('late')).toMatchObject({ kind: 'no-machine' });
  });

  // Seed 002: one poisonous row is skipped and counted; the table keeps serving.
  it('skips a malformed row without losing the rest', async () => {
    const warnings: object[] = [];
    const catalog = new Catalog({
      domain: 'fleet.test',
      logger: { warn: (details) => warnings.push(details), error: () => undefined },
    });
    await catalog.apply('apps', row(['web', 'personal', 'default']));
    await catalog.apply('machines', row(machineCells({ id: 'm1' }).machine));
    await catalog.apply(
      'services',
      row(['m1', 8080, 'web', 'tcp', '{not json', '[]', '{}', 0, 'off', 0]),
    );
    await catalog.apply(
      'services',
      row(['m1', 9090, 'web', 'tcp', http, '["http"]', '{"type":"sideways"}', 0, 'off', 0]),
    );
    await catalog.apply(
      'services',
      row(['m1', 9091, 'web', 'tcp', http, '["http"]', '{}', 0, 'off', 0]),
    );
    expect(await catalog.route('web')).toMatchObject({ kind: 'ok' });
    expect((await catalog.stats()).rejectedRows).toBe(2);
    expect(warnings).toHaveLength(2);
  });

  it('never logs a certificate key, even when its row is bad', async () => {
    const warnings: object[] = [];
    const catalog = new Catalog({
      domain: 'fleet.test',
      logger: { warn: (details) => warnings.push(details), error: () => undefined },
    });
    await catalog.apply('apps', row(['web', 'personal', 'default']));
    await catalog.apply('certificates', row(['www.example.com', 'web', 'PEM', 12345, 'x']));
    await catalog.apply('app_hostnames', row(['www.example.com', 'web']));
    await catalog.apply(
      'certificates',
      row(['www.example.com', 'web', 'PEM', 'SEALED', '2030-01-01']),
    );
    expect(JSON.stringify(warnings)).not.toMatch(/PEM|12345/);
    const certificate = await catalog.certificate('WWW.example.com');
    expect(certificate).toMatchObject({
      certPem: 'PEM',
      sealedKey: 'SEALED',
      notAfter: '2030-01-01',
    });
    expect(JSON.stringify(certificate)).not.toMatch(/SEALED|PEM/);
  });

  it('moves a machine that changes app out of its old app', async () => {
    const catalog = await catalogWith([{ id: 'm1' }, { id: 'm2' }, { id: 'o1', app: 'other' }]);
    await catalog.apply(
      'machines',
      change('update', machineCells({ id: 'm1', app: 'other' }).machine),
    );
    const web = await catalog.route('web');
    expect(web.kind === 'ok' && web.candidates.map((c) => c.machine.id)).toEqual(['m2']);
    const other = await catalog.route('other');
    expect(other.kind === 'ok' && other.candidates.map((c) => c.machine.id).sort()).toEqual([
      'm1',
      'o1',
    ]);
  });

  it('keeps routing to machines whose host has no row (the hosts stream may start after machines)', async () => {
    const catalog = await catalogWith([{ id: 'm1' }]);
    await catalog.apply('hosts', { type: 'reset', columns: [] });
    await catalog.apply('hosts', { type: 'ready', changeId: 0 });
    expect(await catalog.route('web')).toMatchObject({ kind: 'ok' });
    await catalog.apply(
      'hosts',
      change('insert', ['host-ams', 'ams', 'worker', '10.0.0.9:4280', 'down']),
    );
    expect(await catalog.route('web')).toMatchObject({ kind: 'no-machine' });
    await catalog.apply(
      'hosts',
      change('update', ['host-ams', 'ams', 'worker', '10.0.0.9:4280', 'ready']),
    );
    const decision = await catalog.route('web');
    expect(decision.kind === 'ok' && decision.machine.backhaulAddr).toBe('10.0.0.9:4280');
  });

  it('shows every lock in locks() and one combined snapshot in lock.snapshot()', async () => {
    const catalog = await catalogWith([{ id: 'm1' }], { shards: 4 });
    expect(catalog.locks().map((lock) => lock.name)).toEqual([
      'catalog-global',
      'catalog-0',
      'catalog-1',
      'catalog-2',
      'catalog-3',
    ]);
    expect(catalog.lock.snapshot()).toMatchObject({ name: 'catalog', holders: [] });
    expect(catalog.lock.snapshot().lastWriter?.label).toMatch(/^apply-/);
  });
});
