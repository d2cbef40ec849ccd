import { present } from '@fleet/service/invariant';
import { until } from '@fleet/service/vitest-until';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, FlydFixture, hello } from './flyd-fixture.js';
import { settledIn } from './machine-wait.js';

interface HostRow {
  id: string;
  region: string;
  role: string;
  cpus: number;
  memory_mb: number;
  cpus_reserved: number;
  memory_mb_reserved: number;
  machine_count: number;
  status: string;
}

// The worker's `hosts` row in corrosion is what placement reads: its capacity is flyd's flags, its
// reservations and count are the sum of its live machines' guests, after creates and destroys.
describe("the host's row in corrosion", () => {
  const fixture = new FlydFixture([
    ...['--host-id', 'row-host', '--region', 'fra'],
    ...['--cpus', '12', '--memory-mb', '6144'],
  ]);
  let base: string;

  beforeAll(async () => {
    base = await fixture.start();
  });
  afterAll(() => fixture.close());
  const client = () => fixture.corrosionClient;

  const hostRow = async () =>
    (
      await client().queryObjects<HostRow>([
        'SELECT id, region, role, cpus, memory_mb, cpus_reserved, memory_mb_reserved, machine_count, status FROM hosts WHERE id = ?',
        ['row-host'],
      ])
    )[0];
  /** Polls until the row's reservations are `[cpus, memory, count]`; the row then. */
  const reserved = (cpus: number, memoryMb: number, count: number) =>
    until(`host row reserving ${cpus} cpus, ${memoryMb} MB, ${count} machines`, async () => {
      const row = await hostRow();
      return row?.cpus_reserved === cpus &&
        row.memory_mb_reserved === memoryMb &&
        row.machine_count === count
        ? row
        : undefined;
    });
  const create = async (guest?: { cpus: number; memory_mb: number }) => {
    const config = guest ? { ...hello, guest } : hello;
    const answer = await call(base, 'POST', '/v1/machines', { app: 'rows', config });
    expect(answer?.status).toBe(200);
    return present(answer, 'answer').body.id as string;
  };

  it('publishes its flags as capacity, with nothing reserved, at start', async () => {
    expect(await reserved(0, 0, 0)).toEqual({
      id: 'row-host',
      region: 'fra',
      role: 'worker',
      cpus: 12,
      memory_mb: 6144,
      cpus_reserved: 0,
      memory_mb_reserved: 0,
      machine_count: 0,
      status: 'ready',
    });
  });

  it('reserves what live machines ask for, whatever their state, and frees it on destroy', async () => {
    const big = await create({ cpus: 4, memory_mb: 2048 });
    const small = await create(); // Fly's defaults: 1 cpu, 256 MB
    await reserved(5, 2304, 2);
    await settledIn(base, big, 'started');
    await settledIn(base, small, 'started');

    // A stopped machine still holds its reservation: it can start again on this host.
    expect((await call(base, 'POST', `/v1/machines/${small}/stop`))?.status).toBe(200);
    expect(await reserved(5, 2304, 2)).toMatchObject({ cpus: 12, memory_mb: 6144 });

    expect((await call(base, 'DELETE', `/v1/machines/${big}?kill=true`))?.status).toBe(200);
    await reserved(1, 256, 1);
    const third = await create({ cpus: 2, memory_mb: 512 });
    await reserved(3, 768, 2);
    await settledIn(base, third, 'started'); // its create run is over: a destroy is not a conflict
    expect((await call(base, 'DELETE', `/v1/machines/${small}`))?.status).toBe(200);
    expect((await call(base, 'DELETE', `/v1/machines/${third}?kill=true`))?.status).toBe(200);
    expect(await reserved(0, 0, 0)).toMatchObject({ cpus: 12, memory_mb: 6144, status: 'ready' });
  });

  it("keeps the status an operator set (cordoned) through the row's later updates", async () => {
    await client().transaction([
      ["UPDATE hosts SET status = 'cordoned' WHERE id = ?", ['row-host']],
    ]);
    const id = await create();
    expect(await reserved(1, 256, 1)).toMatchObject({ status: 'cordoned' });
    await settledIn(base, id, 'started');
    expect((await call(base, 'DELETE', `/v1/machines/${id}?kill=true`))?.status).toBe(200);
    expect(await reserved(0, 0, 0)).toMatchObject({ status: 'cordoned' });
  });
});
