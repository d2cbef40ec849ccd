// The baseline: a plain Map from app to an array of plain machine objects, doing the same
// selection as the Catalog's route() (bands, local first, RTT bucket, random tie-break, best 4)
// with nothing else: no locks, no shards, no interning, no lazy checks.
import { machineRows, regions } from './data.mjs';

const place = new Map(regions.map(([code, lat, lon]) => [code, { lat, lon }]));
function estimateRttMs(region) {
  if (region === 'ams') return 0;
  const a = place.get('ams');
  const b = place.get(region);
  const rad = Math.PI / 180;
  const h =
    Math.sin(((b.lat - a.lat) * rad) / 2) ** 2 +
    Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(((b.lon - a.lon) * rad) / 2) ** 2;
  return (2 * 6371 * Math.asin(Math.min(1, Math.sqrt(h)))) / 100;
}

export function baselineFleet(apps, machinesPerApp, loadOf) {
  const fleet = new Map();
  for (let appIndex = 0; appIndex < apps; appIndex++) {
    const list = [];
    for (let index = 0; index < machinesPerApp; index++) {
      const { app, machine, service } = machineRows(appIndex, index, machinesPerApp);
      const concurrency = JSON.parse(service[6]);
      list.push({
        id: machine[0],
        app,
        state: machine[2],
        privateAddr: machine[3],
        region: machine[4],
        hostId: machine[5],
        instanceId: machine[6],
        softLimit: concurrency.soft_limit ?? 20,
        hardLimit: concurrency.hard_limit ?? Number.POSITIVE_INFINITY,
        load: loadOf(appIndex * machinesPerApp + index),
        healthy: true,
        rttMs: estimateRttMs(machine[4]),
      });
      fleet.set(app, list);
    }
  }
  return fleet;
}

export function baselineRoute(fleet, app) {
  const list = fleet.get(app);
  if (list === undefined) return [];
  const scores = [];
  const picked = [];
  for (let i = 0; i < list.length; i++) {
    const machine = list[i];
    if (machine.state !== 'started' || !machine.healthy) continue;
    const band = machine.load < machine.softLimit ? 0 : machine.load < machine.hardLimit ? 1 : 2;
    if (band === 2) continue;
    const score =
      (machine.region === 'ams' ? 0 : 4e7) +
      band * 1e7 +
      Math.floor(machine.rttMs / 5) +
      Math.random();
    if (picked.length === 4 && score >= scores[3]) continue;
    let at = picked.length === 4 ? 3 : picked.length;
    while (at > 0 && scores[at - 1] > score) {
      scores[at] = scores[at - 1];
      picked[at] = picked[at - 1];
      at--;
    }
    scores[at] = score;
    picked[at] = { machine, band, rttMs: machine.rttMs, local: machine.region === 'ams' };
  }
  return picked;
}

export function naiveRoute(fleet, app) {
  const list = fleet.get(app);
  if (list === undefined) return undefined;
  for (const machine of list) if (machine.state === 'started') return machine;
  return undefined;
}
