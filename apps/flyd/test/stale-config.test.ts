import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { until } from '@fleet/service/vitest-until';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callExpecting } from './expect-status.js';
import { call, FlydFixture, hello } from './flyd-fixture.js';

// Machines recorded before the config schema existed can hold what it now refuses: a string or a
// negative `memory_mb`. Written into flyd's own database between two runs of a real flyd, they
// still count as Fly's sizes in the host's reservations (never a string, never negative), and a
// migrate refuses them up front, naming the field, instead of failing halfway on the target.
describe('machines stored with a config the schema now refuses', () => {
  const fixture = new FlydFixture(['--host-id', 'stale-host', '--memory-mb', '4096']);
  let base = '';
  const ids: string[] = [];

  beforeAll(async () => {
    base = await fixture.start();
    for (let created = 0; created < 2; created++) {
      const answer = await callExpecting(base, 'POST', '/v1/machines', {
        app: 'stale',
        config: hello,
        skip_launch: true,
      });
      ids.push(answer.body.id as string);
    }
    await fixture.flyd?.stop();
    // As an older flyd would have stored them, without the schema's checks.
    const db = new Database(join(fixture.dir, 'flyd', 'flyd.db'));
    try {
      const stored = [{ memory_mb: '512' }, { memory_mb: -51_200 }];
      for (const [at, guest] of stored.entries()) {
        db.prepare('UPDATE machines SET config = ? WHERE id = ?').run(
          JSON.stringify({ ...hello, guest }),
          ids[at],
        );
      }
    } finally {
      db.close();
    }
    base = await fixture.startFlyd();
  });
  afterAll(async () => {
    for (const id of ids) await call(base, 'DELETE', `/v1/machines/${id}?kill=true`);
    await fixture.close();
    rmSync(fixture.dir, { recursive: true, force: true });
  });

  it("counts each as Fly's smallest guest in the host's reservations", async () => {
    const row = await until('the host row with both machines', async () => {
      const [host] = await fixture.corrosionClient.queryObjects<{
        memory_mb_reserved: unknown;
        cpus_reserved: unknown;
        machine_count: unknown;
      }>([
        'SELECT memory_mb_reserved, cpus_reserved, machine_count FROM hosts WHERE id = ?',
        ['stale-host'],
      ]);
      return host?.machine_count === 2 ? host : undefined;
    });
    expect(row).toEqual({ memory_mb_reserved: 512, cpus_reserved: 2, machine_count: 2 });
  });

  it('refuses to migrate them with 412 naming the field, and leaves them as they were', async () => {
    for (const id of ids) {
      const refused = await call(base, 'POST', `/v1/machines/${id}/migrate`, {
        target_url: 'http://127.0.0.1:9',
        target_host_id: 'elsewhere',
      });
      expect(refused).toMatchObject({ status: 412, body: { code: 'FLYD_ERR_MIGRATE' } });
      expect(refused?.body.error).toMatch(
        /cannot migrate until its config is updated: config\.guest\.memory_mb must be/,
      );
      const machine = await callExpecting(base, 'GET', `/v1/machines/${id}`);
      expect(machine.body).toMatchObject({ state: 'created', host_id: 'stale-host' });
    }
  });
});
