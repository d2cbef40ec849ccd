// Synthetic fleet for the benchmark: apps × machines, as corrosion rows (parsed from JSON text,
// as the corrosion client hands them over, so strings are flat as in production).

export const regions = [
  ['ams', 52.37, 4.9],
  ['fra', 50.11, 8.68],
  ['lhr', 51.47, -0.45],
  ['cdg', 49.0, 2.55],
  ['waw', 52.17, 20.97],
  ['mad', 40.47, -3.56],
  ['arn', 59.65, 17.92],
  ['iad', 38.94, -77.46],
  ['ord', 41.97, -87.9],
  ['dfw', 32.9, -97.04],
  ['lax', 33.94, -118.41],
  ['sjc', 37.36, -121.93],
  ['sea', 47.45, -122.31],
  ['yyz', 43.68, -79.63],
  ['gru', -23.43, -46.47],
  ['scl', -33.39, -70.79],
  ['nrt', 35.77, 140.39],
  ['hkg', 22.31, 113.91],
  ['sin', 1.36, 103.99],
  ['syd', -33.94, 151.18],
  ['bom', 19.09, 72.87],
  ['jnb', -26.14, 28.25],
];

export const hostsPerRegion = 40;

function hex(n, width) {
  return n.toString(16).padStart(width, '0');
}

/** The rows of machine `index` of app `appIndex`, each from JSON text. */
export function machineRows(appIndex, index, machinesPerApp) {
  const n = appIndex * machinesPerApp + index;
  const app = `app-${hex(appIndex, 6)}`;
  // Apps live in 1-3 regions; most machines in the app's first region.
  const home = appIndex % regions.length;
  const region = regions[index % 3 === 2 ? (home + index) % regions.length : home][0];
  const host = `${region}-h${(n * 7) % hostsPerRegion}`;
  const id = hex(0x3d8d9b5a000000 + n * 7919, 14);
  const instance = `01J${hex(n * 104729, 23).toUpperCase()}`;
  const addr = `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}:8080`;
  const state = index % 10 === 9 ? 'stopped' : 'started';
  const concurrency =
    appIndex % 2 === 0
      ? { type: 'requests', soft_limit: 20 + (appIndex % 50), hard_limit: 25 + (appIndex % 50) }
      : {};
  const ports = [
    { port: 80, handlers: ['http'], force_https: true },
    { port: 443, handlers: ['tls', 'http'] },
  ];
  const machine = JSON.parse(JSON.stringify([id, app, state, addr, region, host, instance]));
  const service = JSON.parse(
    JSON.stringify([
      id,
      8080,
      app,
      'tcp',
      JSON.stringify(ports),
      '["http","tls"]',
      JSON.stringify(concurrency),
      1,
      'stop',
      0,
    ]),
  );
  return { app, machine, service };
}
