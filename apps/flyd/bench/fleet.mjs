import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sampleImagesDir } from '@fleet/sample-images';
import { startServerProcess, unmountUnder } from '@fleet/service';
import { request } from 'undici';

const here = dirname(fileURLToPath(import.meta.url));
export const appsDir = join(here, '..', '..');
export const imagesDir = sampleImagesDir;
export const domain = 'bench.test';
const token = 'bench';

/** Whether flyd runs machines as users of their own here, as on a worker (it does as root). */
export const machineUsers = process.getuid?.() === 0 && process.env.BENCH_MACHINE_USERS !== 'off';
/** Whether each machine has a network of its own, as on a worker (`BENCH_MACHINE_NETWORK=host`: not). */
export const machineNetwork =
  process.getuid?.() === 0 && process.env.BENCH_MACHINE_NETWORK !== 'host';
/** Whether roots and volumes are disks of their size, as on a worker (`BENCH_DISKS=off`: folders). */
export const disks = process.getuid?.() === 0 && process.env.BENCH_DISKS !== 'off';

/**
 * A real corrosion, flyd and edge fly-proxy (built dist), on ephemeral ports. As root, flyd runs
 * each machine as a user of its own, as a worker does (`BENCH_MACHINE_USERS=off` for flyd's own
 * user, to compare): its data directory lets other users through, and a range is asked for, so
 * flyd refuses to start rather than quietly measuring the other way.
 */
export async function startFleet() {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-bench-'));
  chmodSync(dir, 0o711);
  // flyd reads its internal token from FLYD_TOKEN (or --token-file), never from its command line.
  const env = { ...process.env, LOG_LEVEL: 'error', FLYD_TOKEN: token };
  delete env.FLYD_CRASH_AFTER_STEP;
  const servers = [];
  const start = async (app, args, listeners) => {
    const server = await startServerProcess({
      command: process.execPath,
      args: [join(appsDir, app, 'dist', 'main.js'), ...args],
      listeners,
      env,
      logFile: join(dir, `${app}.log`),
    });
    servers.push(server);
    return server.urls;
  };
  const corrosion = (
    await start(
      'corrosion',
      ['agent', '--db', join(dir, 'c.db'), '--api-addr', '127.0.0.1:0'],
      ['api'],
    )
  ).api;
  const flyd = (
    await start(
      'flyd',
      [
        ...['--listen', '127.0.0.1:0', '--data-dir', join(dir, 'flyd')],
        ...['--corrosion-url', corrosion, '--images-dir', imagesDir],
        // The bulk phase holds dozens of 256 MB machines at once: reserve room for them whatever
        // this host's memory (create refuses a machine that does not fit, see the README).
        ...['--memory-mb', '1000000'],
        '--stop-machines-on-exit', // the bench leaves no machine running behind it
        ...['--machine-users', machineUsers ? '300000-365535' : 'off'],
        ...['--disks', disks ? 'auto' : 'off'],
        ...['--machine-network', machineNetwork ? 'auto' : 'host'],
      ],
      ['api'],
    )
  ).api;
  return { dir, corrosion, flyd, servers, start };
}

export async function startProxy(fleet) {
  const urls = await fleet.start(
    'fly-proxy',
    [
      ...['--mode', 'edge', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0'],
      ...['--corrosion-url', fleet.corrosion, '--domain', domain, '--region', 'local'],
    ],
    ['proxy', 'admin'],
  );
  return urls.proxy;
}

export async function stopFleet(fleet) {
  try {
    for (const server of [...fleet.servers].reverse()) await server.stop(15_000);
  } finally {
    unmountUnder(fleet.dir);
    rmSync(fleet.dir, { recursive: true, force: true });
  }
}

/** One call to flyd's API; throws on a non-2xx answer. */
export async function flyd(base, method, path, body) {
  const response = await request(`${base}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
    headersTimeout: 60_000,
    bodyTimeout: 60_000,
  });
  const text = await response.body.text();
  if (response.statusCode >= 300)
    throw new Error(`${method} ${path}: ${response.statusCode} ${text}`);
  return text ? JSON.parse(text) : undefined;
}
