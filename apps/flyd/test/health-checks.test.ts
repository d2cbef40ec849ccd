import { until } from '@fleet/service/vitest-until';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createMachine, FlydFixture } from './flyd-fixture.js';
import { settledIn } from './machine-wait.js';

// Runs, never listens: nobody answers on its port.
const silent = {
  image: 'hello',
  init: { exec: ['node', '-e', 'setInterval(() => {}, 1000)'] },
  restart: { policy: 'no' },
};
const tcpCheck = (extra: Record<string, unknown> = {}) => ({
  type: 'tcp',
  port: 8080,
  interval: '100ms',
  timeout: '500ms',
  ...extra,
});

// Health checks on real machines, read back from corrosion's health_checks: a tcp check of a port
// nobody listens on is critical, and a grace period holds the first check back (order: a machine
// without one is reported first; the one with it is reported afterwards).
describe('health checks', () => {
  const fixture = new FlydFixture();
  let base: string;

  beforeAll(async () => {
    base = await fixture.start();
  });
  const client = () => fixture.corrosionClient;
  afterAll(() => fixture.close());

  const check = async (id: string, name: string) =>
    (
      await client().queryObjects<{ status: string; output: string }>([
        'SELECT status, output FROM health_checks WHERE machine_id = ? AND name = ?',
        [id, name],
      ])
    )[0];
  const create = (config: Record<string, unknown>) => createMachine(base, 'checks', config);

  it('reports a tcp check of a port nobody listens on as critical, and deletes it on destroy', async () => {
    const id = await create({ ...silent, checks: { port: tcpCheck() } });
    await settledIn(base, id, 'started');
    const row = await until('the check critical', async () =>
      (await check(id, 'port'))?.status === 'critical' ? check(id, 'port') : undefined,
    );
    expect(row?.output).toMatch(/^tcp: /);
    expect((await call(base, 'DELETE', `/v1/machines/${id}?kill=true`))?.status).toBe(200);
    await until('the check row deleted', async () =>
      (await check(id, 'port')) === undefined ? true : undefined,
    );
  });

  it("runs a service's checks under Fly's names, each starting as warning", async () => {
    const id = await create({
      ...silent,
      services: [
        { protocol: 'tcp', internal_port: 8080, checks: [tcpCheck({ grace_period: '2s' })] },
      ],
    });
    await settledIn(base, id, 'started');
    const name = 'servicecheck-00-tcp-8080';
    await until('the service check waiting', async () =>
      (await check(id, name))?.status === 'warning' ? true : undefined,
    );
    await until('the service check critical', async () =>
      (await check(id, name))?.status === 'critical' ? true : undefined,
    );
    expect((await call(base, 'DELETE', `/v1/machines/${id}?kill=true`))?.status).toBe(200);
  });

  it('holds the first check back for grace_period', async () => {
    const graced = await create({ ...silent, checks: { port: tcpCheck({ grace_period: '5s' }) } });
    const eager = await create({ ...silent, checks: { port: tcpCheck() } });
    await settledIn(base, graced, 'started');
    await settledIn(base, eager, 'started');
    // The machine without a grace period is reported while the other one, started first, is not.
    await until('the eager check critical', async () =>
      (await check(eager, 'port'))?.status === 'critical' ? true : undefined,
    );
    expect(await check(graced, 'port')).toMatchObject({
      status: 'warning',
      output: 'waiting for the first check',
    });
    // Once its grace period is over, it is checked like any other.
    await until('the graced check critical', async () =>
      (await check(graced, 'port'))?.status === 'critical' ? true : undefined,
    );
    for (const id of [graced, eager])
      expect((await call(base, 'DELETE', `/v1/machines/${id}?kill=true`))?.status).toBe(200);
  });
});
