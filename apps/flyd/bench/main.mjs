// flyd benchmark against a real corrosion, flyd and fly-proxy (built dist: run `npm run build`
// first). Each flyd figure is printed beside its floor or target. Usage:
//   npm run bench -w apps/flyd [-- --count 30 --bulk 60]
import { parseArgs } from 'node:util';
import {
  disks,
  flyd,
  machineNetwork,
  machineUsers,
  startFleet,
  startProxy,
  stopFleet,
} from './fleet.mjs';
import {
  bareSpawn,
  bulkCreate,
  createToRoutable,
  createToStarted,
  stoppedToStarted,
} from './measures.mjs';
import { ms, summary } from './stats.mjs';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '30' },
    bulk: { type: 'string', default: '60' },
    concurrency: { type: 'string', default: '8' },
  },
});
const count = Number(values.count);

const fleet = await startFleet();
try {
  const proxy = await startProxy(fleet);
  const floor = summary(await bareSpawn(count));
  const created = await createToStarted(fleet.flyd, count);
  const create = summary(created.samples);
  // flyd falls back to the host's network where it cannot make one: never measured unsaid.
  const shown = await flyd(fleet.flyd, 'GET', `/v1/machines/${created.ids[0]}`);
  if (machineNetwork === shown.private_addr.startsWith('127.0.0.1:'))
    throw new Error(`machine networks are not what the bench asked for: ${shown.private_addr}`);
  const restart = summary(await stoppedToStarted(fleet.flyd, created.ids[0], count));
  const routed = await createToRoutable(fleet.flyd, proxy, count);
  const route = summary(routed.samples);
  for (const id of [...created.ids, ...routed.ids])
    await flyd(fleet.flyd, 'DELETE', `/v1/machines/${id}?kill=true`);
  const bulk = await bulkCreate(fleet.flyd, Number(values.bulk), Number(values.concurrency));
  for (const id of bulk.ids) await flyd(fleet.flyd, 'DELETE', `/v1/machines/${id}?kill=true`);

  const rows = [
    ['bare spawn → listening (floor)', ms(floor.p50), ms(floor.p99), '—'],
    [
      'create → started',
      ms(create.p50),
      ms(create.p99),
      `${(create.p50 / floor.p50).toFixed(2)}× floor p50`,
    ],
    [
      'stopped → started',
      ms(restart.p50),
      ms(restart.p99),
      `${(restart.p50 / floor.p50).toFixed(2)}× floor p50 (target ≤ 2×)`,
    ],
    ['create → first request via fly-proxy', ms(route.p50), ms(route.p99), `target p99 < 1000 ms`],
    [
      `bulk create (${values.bulk}, ${values.concurrency} at a time)`,
      `${bulk.createdPerSecond.toFixed(1)} created/s`,
      `${bulk.startedPerSecond.toFixed(1)} started/s`,
      '—',
    ],
  ];
  const widths = [0, 1, 2, 3].map((column) =>
    Math.max(
      ...[['measure', 'p50', 'p99', 'vs baseline'], ...rows].map((row) => row[column].length),
    ),
  );
  const line = (row) => row.map((cell, column) => cell.padEnd(widths[column])).join('  ');
  const runAs = machineUsers ? 'users of their own (setpriv)' : "flyd's own user";
  const roots = disks ? 'disks of their size (mkfs and mount at every start)' : 'folders';
  const network = machineNetwork
    ? 'a network namespace and veth link each'
    : "the host's network (a loopback port each)";
  console.log(
    `samples per latency: ${count}; machines run as ${runAs}; roots are ${roots}; networks: ${network}\n`,
  );
  console.log(line(['measure', 'p50', 'p99', 'vs baseline']));
  console.log(line(widths.map((width) => '-'.repeat(width))));
  for (const row of rows) console.log(line(row));
} finally {
  await stopFleet(fleet);
}
