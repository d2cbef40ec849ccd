// npm run bench: route lookups per second and bytes per machine with APPS apps and
// APPS × MACHINES_PER_APP machines held, for the Catalog and for a plain Map of arrays doing the
// same selection (bands, locality, RTT bucket, random tie-break, top 4) in the same run.
// Run with --expose-gc (the npm script does).
import { RwLock } from '@fleet/locks';
import { Catalog } from '../dist/index.js';
import { baselineFleet, baselineRoute, naiveRoute } from './baseline.mjs';
import { machineRows, regions } from './data.mjs';

const apps = Number(process.env.APPS ?? 100_000);
const machinesPerApp = Number(process.env.MACHINES_PER_APP ?? 10);
const lookups = Number(process.env.LOOKUPS ?? 2_000_000);
const rounds = Number(process.env.ROUNDS ?? 5);
const machines = apps * machinesPerApp;

if (typeof globalThis.gc !== 'function') throw new Error('run with node --expose-gc');

function heapUsed() {
  for (let i = 0; i < 3; i++) globalThis.gc();
  return process.memoryUsage().heapUsed;
}

/** Lookup order: the same pseudo-random app sequence for every subject. */
const order = new Uint32Array(lookups);
let seed = 12345;
for (let i = 0; i < lookups; i++) {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  order[i] = seed % apps;
}
const appNames = Array.from({ length: apps }, (_, i) => `app-${i.toString(16).padStart(6, '0')}`);

/** Some load so bands matter: every 4th machine has 21..30 requests in flight. */
const loadOf = (n) => (n % 4 === 0 ? 21 + (n % 10) : 0);

/** Lets every pending promise chain of the applies settle (a macrotask turn). */
const drained = () => new Promise((resolve) => setTimeout(resolve, 0));

function measure(name, lookup) {
  const rates = [];
  let sink = 0;
  for (let round = 0; round < rounds; round++) {
    const startNs = process.hrtime.bigint();
    for (let i = 0; i < lookups; i++) sink += lookup(appNames[order[i]]);
    const elapsedS = Number(process.hrtime.bigint() - startNs) / 1e9;
    rates.push(lookups / elapsedS);
  }
  rates.sort((a, b) => a - b);
  const median = rates[Math.floor(rates.length / 2)];
  if (sink === 0) throw new Error(`${name}: no lookup found a machine`);
  return median;
}

async function ours() {
  const before = heapUsed();
  const logger = { warn: () => undefined, error: () => undefined };
  const catalog = new Catalog({ domain: 'fleet.test', logger, region: 'ams', mode: 'eager' });
  for (const [code, lat, lon] of regions) {
    await catalog.apply('regions', { type: 'row', rowid: 0, cells: [code, code, lat, lon] });
  }
  for (let appIndex = 0; appIndex < apps; appIndex++) {
    const app = appNames[appIndex];
    void catalog.apply('apps', {
      type: 'row',
      rowid: 0,
      cells: JSON.parse(`["${app}","personal","default"]`),
    });
    for (let index = 0; index < machinesPerApp; index++) {
      const rows = machineRows(appIndex, index, machinesPerApp);
      void catalog.apply('machines', { type: 'row', rowid: 0, cells: rows.machine });
      void catalog.apply('services', { type: 'row', rowid: 0, cells: rows.service });
      const load = loadOf(appIndex * machinesPerApp + index);
      for (let unit = 0; unit < load; unit++) catalog.begin(rows.machine[0]);
    }
    if (appIndex % 1_000 === 0) await drained();
  }
  await drained();
  const stats = await catalog.stats();
  if (stats.machines !== machines) throw new Error(`catalog holds ${stats.machines} machines`);
  const bytesPerMachine = (heapUsed() - before) / machines;
  const probe = catalog.route(appNames[0]);
  if (typeof probe.then === 'function') throw new Error('route() took the slow path');
  const rate = measure('catalog', (app) => {
    const decision = catalog.route(app);
    return decision.kind === 'ok' ? 1 : 0;
  });
  return { rate, bytesPerMachine, catalog };
}

function baseline() {
  const before = heapUsed();
  const fleet = baselineFleet(apps, machinesPerApp, loadOf);
  const bytesPerMachine = (heapUsed() - before) / machines;
  const rate = measure('baseline', (app) => (baselineRoute(fleet, app).length > 0 ? 1 : 0));
  const naive = measure('naive', (app) => (naiveRoute(fleet, app) ? 1 : 0));
  return { rate, naive, bytesPerMachine, fleet };
}

/** The same selection under RwLock.read per lookup (awaited): the cost of the lock's read path. */
async function throughLock(catalog) {
  const lock = new RwLock({ name: 'bench', trackAsync: false });
  const count = Math.min(lookups, 500_000);
  let found = 0;
  const startNs = process.hrtime.bigint();
  for (let i = 0; i < count; i++) {
    const app = appNames[order[i]];
    const decision = await lock.read('route', () => catalog.route(app), { context: { app } });
    if (decision.kind === 'ok') found++;
  }
  const elapsedS = Number(process.hrtime.bigint() - startNs) / 1e9;
  if (found === 0) throw new Error('no lookup through the lock found a machine');
  return count / elapsedS;
}

const format = (rate) => `${(rate / 1e6).toFixed(2)} M lookups/s`;
console.log(
  `catalog bench: ${apps} apps, ${machines} machines, ${lookups} lookups × ${rounds} rounds (median)`,
);
let base = baseline();
console.log(
  `baseline (Map of arrays, same selection): ${format(base.rate)}, ${base.bytesPerMachine.toFixed(0)} bytes/machine`,
);
console.log(`naive (Map of arrays, first started machine): ${format(base.naive)}`);
const baseRate = base.rate;
const baseNaive = base.naive;
const baseBytes = base.bytesPerMachine;
base = undefined; // let the baseline's fleet go before measuring ours
const mine = await ours();
console.log(
  `catalog (16 shards, RwLock fast path, bands): ${format(mine.rate)}, ${mine.bytesPerMachine.toFixed(0)} bytes/machine`,
);
const locked = await throughLock(mine.catalog);
console.log(`catalog through await RwLock.read per lookup: ${format(locked)}`);
console.log('');
console.log(`ratio catalog / baseline: ${(mine.rate / baseRate).toFixed(2)} (target ≥ 0.5)`);
console.log(`ratio catalog / naive: ${(mine.rate / baseNaive).toFixed(2)}`);
console.log(`ratio RwLock.read path / baseline: ${(locked / baseRate).toFixed(2)}`);
console.log(
  `bytes per machine: ${mine.bytesPerMachine.toFixed(0)} (target < 400; baseline ${baseBytes.toFixed(0)})`,
);
