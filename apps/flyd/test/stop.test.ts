import { until } from '@fleet/service/vitest-until';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callExpecting, expectStatus } from './expect-status.js';
import { call, createMachine, FlydFixture, inState } from './flyd-fixture.js';
import { machinePids } from './machine-processes.js';
import { settledIn } from './machine-wait.js';

// A machine that ignores SIGTERM and exits only when sent SIGUSR2: its stop lasts exactly as long
// as the test wants (order, not timing), or until flyd's SIGKILL at the end of the grace period.
const stubborn = `process.on('SIGTERM', () => console.log('ignored SIGTERM'));
process.on('SIGUSR2', () => process.exit(0));
console.log('up'); setInterval(() => {}, 1000);`;
// A machine with a service that listens on its port (every address: in a network of its own,
// 127.0.0.1 is out of flyd's reach) only once sent SIGUSR2: a start that lasts until the test
// lets it finish.
const lateListener = `const server = require('node:http').createServer((q, s) => s.end('ok'));
process.on('SIGUSR2', () => server.listen(Number(process.env.PORT)));
console.log('up'); setInterval(() => {}, 1000);`;
// A machine whose child (a grandchild too) ignores SIGTERM while the parent exits on it.
const family = `const { spawn } = require('node:child_process');
const stubborn = "process.on('SIGTERM', () => {}); setInterval(() => {}, 1000);";
spawn(process.execPath, ['-e', "require('node:child_process').spawn(process.execPath, ['-e', " + JSON.stringify(stubborn) + "], {stdio: 'ignore'}); " + stubborn], {stdio: 'ignore'});
setInterval(() => {}, 1000);`;

// A machine whose child starts a session of its own (setsid): outside the machine's process group.
const escaper = `require('node:child_process').spawn('setsid', ['sleep', '1000'], { stdio: 'ignore' });
setInterval(() => {}, 1000);`;
// A machine whose main process exits by itself (on SIGUSR2) while its child keeps running.
// (The signal goes to the whole group: the child ignores it.)
const orphaning = `const child = "process.on('SIGUSR2', () => {}); console.log('child up'); setInterval(() => {}, 1000);";
require('node:child_process').spawn(process.execPath, ['-e', child], { stdio: ['ignore', 'inherit', 'inherit'] });
process.on('SIGUSR2', () => process.exit(0));
console.log('up'); setInterval(() => {}, 1000);`;

// Exits cleanly on SIGINT, saying so; ignores SIGTERM.
const onInterrupt = `process.on('SIGINT', () => { console.log('got SIGINT'); process.exit(0); });
process.on('SIGTERM', () => console.log('ignored SIGTERM'));
console.log('up'); setInterval(() => {}, 1000);`;

const machine = (script: string, extra: Record<string, unknown> = {}) => ({
  image: 'hello',
  init: { exec: ['node', '-e', script] },
  restart: { policy: 'no' },
  ...extra,
});

// Stop through the API on real processes: one operation at a time per machine (a second one
// waits for the first, bounded by --busy-wait-ms, then 409), SIGKILL after the grace period for a process that ignores SIGTERM, and nothing of the
// machine's process tree left once it is stopped — found through the machine's cgroup where flyd
// makes them, else by its FLY_MACHINE_ID: both ways are run.
describe.each([
  ['cgroups', []],
  ['off', ['--machine-limits', 'off']],
])('stopping a machine (--machine-limits %s)', (_limits, flags) => {
  const fixture = new FlydFixture([
    '--listen-wait-ms',
    '600000',
    '--busy-wait-ms',
    '300',
    ...flags,
  ]);
  let base: string;

  beforeAll(async () => {
    base = await fixture.start();
  });
  const client = () => fixture.corrosionClient;
  afterAll(() => fixture.close());

  const create = (config: Record<string, unknown>) => createMachine(base, 'stops', config);
  const logged = (id: string, message: string) =>
    until(`${id} logs ${message}`, async () => {
      const answer = await call(base, 'GET', `/v1/machines/${id}/logs`);
      const lines = expectStatus(answer, 200, `${id} logs`).body as unknown as {
        message: string;
      }[];
      return lines.some((line) => line.message === message) ? true : undefined;
    });

  it('refuses a second operation with 409 FLYD_ERR_CONFLICT once a slow stop outlasts --busy-wait-ms', async () => {
    const id = await create(machine(stubborn));
    await settledIn(base, id, 'started');
    await logged(id, 'up'); // its SIGTERM handler is installed
    const stopping = call(base, 'POST', `/v1/machines/${id}/stop`, { timeout: 600 });
    await inState(base, id, 'stopping');
    await logged(id, 'ignored SIGTERM');

    const destroy = await call(base, 'DELETE', `/v1/machines/${id}?kill=true`);
    expect(destroy).toMatchObject({ status: 409, body: { code: 'FLYD_ERR_CONFLICT' } });
    expect(destroy?.body.error).toMatch(/busy with a stop operation \(waited 300 ms for it/);
    const update = await call(base, 'POST', `/v1/machines/${id}`, {
      config: machine(stubborn, { env: { V: '2' } }),
    });
    expect(update).toMatchObject({ status: 409, body: { code: 'FLYD_ERR_CONFLICT' } });
    expect((await callExpecting(base, 'GET', `/v1/machines/${id}`)).body.state).toBe('stopping');

    await callExpecting(base, 'POST', `/v1/machines/${id}/signal`, { signal: 'SIGUSR2' }); // let it exit
    expect(await stopping).toMatchObject({ status: 200, body: { ok: true } });
    expect((await callExpecting(base, 'GET', `/v1/machines/${id}`)).body.state).toBe('stopped');
    expect((await call(base, 'DELETE', `/v1/machines/${id}`))?.status).toBe(200);
  });

  it('refuses a stop with 409 FLYD_ERR_CONFLICT once a slow start outlasts --busy-wait-ms', async () => {
    const id = await create(
      machine(lateListener, {
        services: [{ internal_port: 8080, ports: [{ port: 80, handlers: ['http'] }] }],
      }),
    );
    await inState(base, id, 'starting');
    await logged(id, 'up'); // its SIGUSR2 handler is installed
    const stop = await call(base, 'POST', `/v1/machines/${id}/stop`);
    expect(stop).toMatchObject({ status: 409, body: { code: 'FLYD_ERR_CONFLICT' } });
    expect((await callExpecting(base, 'GET', `/v1/machines/${id}`)).body.state).toBe('starting');
    await callExpecting(base, 'POST', `/v1/machines/${id}/signal`, { signal: 'SIGUSR2' }); // now it listens
    await settledIn(base, id, 'started');
    expect((await call(base, 'DELETE', `/v1/machines/${id}?kill=true`))?.status).toBe(200);
  });

  it("SIGKILLs a process that ignores SIGTERM after the request's grace period", async () => {
    const id = await create(machine(stubborn));
    await settledIn(base, id, 'started');
    await logged(id, 'up');
    const stop = await call(base, 'POST', `/v1/machines/${id}/stop`, { timeout: 0.2 });
    expect(stop).toMatchObject({ status: 200, body: { ok: true } });
    await logged(id, 'ignored SIGTERM'); // it did see the SIGTERM, and outlived it
    expect((await callExpecting(base, 'GET', `/v1/machines/${id}`)).body.state).toBe('stopped');
    expect(machinePids(id)).toEqual([]);
    const row = await client().queryObjects<{ state: string }>([
      'SELECT state FROM machines WHERE id = ?',
      [id],
    ]);
    expect(row[0]?.state).toBe('stopped');
  });

  it("SIGKILLs it after flyd's --stop-timeout-ms when the request names no timeout", async () => {
    const id = await create(machine(stubborn));
    await settledIn(base, id, 'started');
    await logged(id, 'up');
    // The fixture's flyd runs with --stop-timeout-ms 2000.
    expect(await call(base, 'POST', `/v1/machines/${id}/stop`)).toMatchObject({ status: 200 });
    await logged(id, 'ignored SIGTERM');
    expect((await callExpecting(base, 'GET', `/v1/machines/${id}`)).body.state).toBe('stopped');
    expect(machinePids(id)).toEqual([]);
  });

  it('kills the whole process tree: no process with its FLY_MACHINE_ID remains', async () => {
    const id = await create(machine(family));
    await settledIn(base, id, 'started');
    // The machine, its child and its grandchild (they inherit its environment).
    await until(`${id}'s three processes`, async () =>
      machinePids(id).length >= 3 ? true : undefined,
    );
    expect(await call(base, 'POST', `/v1/machines/${id}/stop`, { timeout: 5 })).toMatchObject({
      status: 200,
    });
    expect(machinePids(id)).toEqual([]);
    expect((await call(base, 'POST', `/v1/machines/${id}/start`))?.status).toBe(200);
    await until(`${id}'s three processes again`, async () =>
      machinePids(id).length >= 3 ? true : undefined,
    );
    expect((await call(base, 'DELETE', `/v1/machines/${id}?kill=true`))?.status).toBe(200);
    expect(machinePids(id)).toEqual([]);
  });

  it('kills a child that left the process group (setsid) too', async () => {
    const id = await create(machine(escaper));
    await settledIn(base, id, 'started');
    await until(`${id} and its child`, async () =>
      machinePids(id).length >= 2 ? true : undefined,
    );
    expect(await call(base, 'POST', `/v1/machines/${id}/stop`)).toMatchObject({ status: 200 });
    expect(machinePids(id)).toEqual([]);
  });

  it('leaves no process behind when its main process exits by itself', async () => {
    const id = await create(machine(orphaning));
    await settledIn(base, id, 'started');
    await logged(id, 'up');
    await logged(id, 'child up');
    expect(machinePids(id).length).toBeGreaterThanOrEqual(2);
    await callExpecting(base, 'POST', `/v1/machines/${id}/signal`, { signal: 'SIGUSR2' }); // main exits 0
    await inState(base, id, 'stopped');
    expect(machinePids(id)).toEqual([]); // a VM's processes end with its init: so do a machine's
  });

  it("sends the request's signal instead of SIGTERM", async () => {
    const id = await create(machine(onInterrupt));
    await settledIn(base, id, 'started');
    await logged(id, 'up');
    const stop = await call(base, 'POST', `/v1/machines/${id}/stop`, {
      signal: 'SIGINT',
      timeout: 600, // were SIGINT not sent, the stop would last this long: the test's bound fails it
    });
    expect(stop).toMatchObject({ status: 200 });
    await logged(id, 'got SIGINT');
    const lines = (await callExpecting(base, 'GET', `/v1/machines/${id}/logs`)).body as unknown as {
      message: string;
    }[];
    expect(lines.map((line) => line.message)).not.toContain('ignored SIGTERM');
    expect(machinePids(id)).toEqual([]);
    const refused = await call(base, 'POST', `/v1/machines/${id}/stop`, { signal: 'SIGNOPE' });
    expect(refused).toMatchObject({ status: 400, body: { code: 'BAD_REQUEST' } });
    expect(refused?.body.error).toContain('signal');
  });
});
