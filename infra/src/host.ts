#!/usr/bin/env node

import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { sampleImagesDir } from '@fleet/sample-images';
import { present } from '@fleet/service/invariant';
import { hostPorts } from './hosts/ports.js';
import { repoRoot } from './launcher/paths.js';
import {
  loadTopologyFile,
  type Topology,
  TopologyError,
  type TopologyHost,
} from './topology/load.js';

/**
 * `node infra/dist/host.js join --topology FILE --host ID`: puts one real server of a topology in
 * place — the flags of each server of its roles as `--config` files, and the systemd units of
 * those roles. The topology is the same file the local harness runs; only the hosts' `address`
 * fields (the servers' real addresses) are needed on top.
 */
const usage = `usage: node infra/dist/host.js join --topology FILE --host ID [options]
  --config-dir DIR   where the servers' config files go (default /etc/fleet)
  --units-dir DIR    where the systemd units go (default /etc/systemd/system)
  --install-dir DIR  where this repository is built on the host (default /opt/fleet)
  --domain NAME      the fleet domain of the edges (default localhost)
  --init-secrets     on the first host: create secrets.env and fleet.key (copy both to the others)`;

interface JoinOptions {
  topology: Topology;
  host: TopologyHost & { address: string };
  configDir: string;
  unitsDir: string;
  installDir: string;
  domain: string;
  initSecrets: boolean;
}

class JoinError extends Error {}

function parse(argv: string[]): JoinOptions {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      topology: { type: 'string' },
      host: { type: 'string' },
      'config-dir': { type: 'string', default: '/etc/fleet' },
      'units-dir': { type: 'string', default: '/etc/systemd/system' },
      'install-dir': { type: 'string', default: '/opt/fleet' },
      domain: { type: 'string', default: 'localhost' },
      'init-secrets': { type: 'boolean', default: false },
    },
  });
  if (positionals.length !== 1 || positionals[0] !== 'join')
    throw new JoinError('the one command is join');
  if (!values.topology) throw new JoinError('--topology is required');
  if (!values.host) throw new JoinError('--host is required');
  const topology = loadTopologyFile(values.topology);
  const host = topology.hosts.find((candidate) => candidate.id === values.host);
  if (!host) throw new JoinError(`--host: no host "${values.host}" in ${values.topology}`);
  const missing = topology.hosts
    .filter((candidate) => candidate.address === undefined)
    .map((candidate) => candidate.id);
  if (missing.length > 0)
    throw new JoinError(
      `${values.topology}: real hosts need their "address"; missing for ${missing.join(', ')}`,
    );
  return {
    topology,
    host: host as JoinOptions['host'],
    // Absolute: the units name them, and systemd takes no relative paths.
    configDir: resolve(values['config-dir']),
    unitsDir: values['units-dir'],
    installDir: resolve(values['install-dir']),
    domain: values.domain,
    initSecrets: values['init-secrets'],
  };
}

const hostPort = (address: string, port: number) =>
  address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;

/** Each server's `--config` file, by unit name. */
function serverConfigs(options: JoinOptions): Record<string, Record<string, unknown>> {
  const { topology, host, configDir } = options;
  const corrosionUrl = `http://127.0.0.1:${hostPorts.corrosionApi}`;
  const fleetKey = join(configDir, 'fleet.key');
  const apiHost = present(
    topology.hosts.find((candidate) => candidate.api),
    'the API host (the topology schema requires one)',
  );
  const configs: Record<string, Record<string, unknown>> = {
    'fleet-corrosion': {
      db: '/var/lib/fleet/corrosion/corrosion.db',
      // Local servers only: on real hosts the API stays on loopback.
      'api-addr': `127.0.0.1:${hostPorts.corrosionApi}`,
      'gossip-addr': hostPort(host.address, hostPorts.gossip),
      'gossip-key-file': fleetKey,
      bootstrap: topology.hosts
        .filter((other) => other.id !== host.id)
        .map((other) => hostPort(present(other.address, `${other.id}'s address`), hostPorts.gossip))
        .join(','),
    },
  };
  const common = { 'corrosion-url': corrosionUrl, region: host.region };
  if (host.roles.includes('worker')) {
    configs['fleet-flyd'] = {
      ...common,
      listen: hostPort(host.address, hostPorts.flyd),
      'data-dir': '/var/lib/fleet/flyd',
      'host-id': host.id,
      'images-dir': sampleImagesDir,
      'fleet-key-file': fleetKey,
      ...(host.cpus ? { cpus: host.cpus } : {}),
      ...(host.memoryMb ? { 'memory-mb': host.memoryMb } : {}),
    };
    configs['fleet-fly-proxy-backhaul'] = {
      ...common,
      mode: 'backhaul',
      'host-id': host.id,
      'fleet-key-file': fleetKey,
      listen: hostPort(host.address, hostPorts.backhaul),
    };
  }
  if (host.roles.includes('edge'))
    configs['fleet-fly-proxy-edge'] = {
      ...common,
      mode: 'edge',
      'host-id': host.id,
      'fleet-key-file': fleetKey,
      listen: hostPort(host.address, hostPorts.edge),
      domain: options.domain,
      'flaps-url': `http://${hostPort(present(apiHost.address, `${apiHost.id}'s address`), hostPorts.flaps)}`,
    };
  if (host.api) configs.flaps = { 'corrosion-url': corrosionUrl, 'fleet-key-file': fleetKey };
  return configs;
}

/**
 * A unit of infra/systemd as this host needs it: the files name the default folders
 * (`/opt/fleet`, `/etc/fleet`), replaced by `--install-dir` and `--config-dir`.
 */
function unitText(name: string, options: JoinOptions): string {
  return readFileSync(join(repoRoot, 'infra', 'systemd', name), 'utf8')
    .replaceAll('/opt/fleet/', `${options.installDir.replace(/\/+$/, '')}/`)
    .replaceAll('/etc/fleet/', `${options.configDir.replace(/\/+$/, '')}/`);
}

function writeHost(options: JoinOptions): string[] {
  const { configDir, unitsDir, host, topology } = options;
  mkdirSync(configDir, { recursive: true });
  mkdirSync(unitsDir, { recursive: true });
  const written: string[] = [];
  const configFile = (unit: string) => join(configDir, `${unit.replace(/^fleet-/, '')}.json`);
  const configs = serverConfigs(options);
  for (const [unit, config] of Object.entries(configs)) {
    writeFileSync(configFile(unit), `${JSON.stringify(config, null, 2)}\n`);
    written.push(configFile(unit));
    const units = unit === 'flaps' ? ['flaps.service', 'flaps.socket'] : [`${unit}.service`];
    for (const name of units) {
      writeFileSync(join(unitsDir, name), unitText(name, options));
      written.push(join(unitsDir, name));
    }
  }
  if (options.initSecrets) {
    const token = () => randomBytes(24).toString('hex');
    const secrets = join(configDir, 'secrets.env');
    if (!existsSync(secrets)) {
      writeFileSync(
        secrets,
        `FLEET_API_TOKEN=${token()}\nFLYD_TOKEN=${token()}\nCORROSION_TOKEN=${token()}\n`,
        { mode: 0o600 },
      );
      written.push(secrets);
    }
    const key = join(configDir, 'fleet.key');
    if (!existsSync(key)) {
      writeFileSync(key, randomBytes(32).toString('hex'), { mode: 0o600 });
      written.push(key);
    }
  }
  const units = Object.keys(configs).map((unit) =>
    unit === 'flaps' ? 'flaps.socket' : `${unit}.service`,
  );
  // gossip_addr: how flaps finds the host's corrosion among SWIM's members (host liveness).
  const gossip = hostPort(host.address, hostPorts.gossip);
  const register = host.roles.includes('worker')
    ? `INSERT INTO hosts (id, region, role, backhaul_addr, gossip_addr) VALUES ('${host.id}', '${host.region}', 'worker', '${hostPort(host.address, hostPorts.backhaul)}', '${gossip}') ON CONFLICT (id) DO UPDATE SET backhaul_addr = excluded.backhaul_addr, gossip_addr = excluded.gossip_addr`
    : `INSERT INTO hosts (id, region, role, gossip_addr) VALUES ('${host.id}', '${host.region}', 'edge', '${gossip}') ON CONFLICT (id) DO UPDATE SET gossip_addr = excluded.gossip_addr`;
  const regions = topology.regions
    .map(
      (region) =>
        `('${region.code}', '${region.name.replaceAll("'", "''")}', ${region.lat}, ${region.lon})`,
    )
    .join(', ');
  return [
    ...written.map((path) => `wrote ${path}`),
    '',
    'next:',
    `  ${existsSync(join(configDir, 'secrets.env')) ? '' : `copy secrets.env and fleet.key from the first host into ${configDir}/ (mode 0600), then\n  `}systemctl daemon-reload && systemctl enable --now ${units.join(' ')}`,
    '  register the host (once corrosion is up; it is fleet configuration no server writes):',
    // The CLI takes CORROSION_TOKEN from the environment secrets.env exports (never a flag's value).
    `  set -a; . ${configDir}/secrets.env; set +a; corrosion="node ${options.installDir}/apps/corrosion/dist/main.js exec"`,
    `  $corrosion --sql "${register}"`,
    ...(host.api
      ? [
          '  and, once, the regions:',
          `  $corrosion --sql "INSERT INTO regions (code, name, lat, lon) VALUES ${regions} ON CONFLICT (code) DO UPDATE SET name = excluded.name, lat = excluded.lat, lon = excluded.lon"`,
        ]
      : []),
  ];
}

try {
  for (const line of writeHost(parse(process.argv.slice(2)))) process.stdout.write(`${line}\n`);
} catch (error) {
  const badFlag = (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true;
  if (!(error instanceof JoinError || error instanceof TopologyError || badFlag)) throw error;
  process.stderr.write(`${(error as Error).message}\n${usage}\n`);
  process.exit(2);
}
