import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { serverMain } from '../src/launcher/paths.js';

// The units for real hosts: systemd-analyze verify finds nothing to say about any of them; their
// restart policies can never leave two instances of a role; and `host.js join` writes, from a
// topology with real addresses, config files whose every key is a flag of the server it is for.
const unitsDir = fileURLToPath(new URL('../systemd/', import.meta.url));
const hostJs = fileURLToPath(new URL('../dist/host.js', import.meta.url));
const topologyFile = fileURLToPath(new URL('../topologies/three-regions.json', import.meta.url));
const units = readdirSync(unitsDir).filter((name) => /\.(service|socket)$/.test(name));
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const verify = (paths: string[]) =>
  spawnSync('systemd-analyze', ['verify', ...paths], { encoding: 'utf8', timeout: 60_000 });

const settings = (unit: string) =>
  Object.fromEntries(
    readFileSync(join(unitsDir, unit), 'utf8')
      .split('\n')
      .filter((line) => /^[A-Za-z]+=/.test(line))
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );

describe('systemd units', () => {
  it('one unit per role, and systemd-analyze verify has nothing to say about any', () => {
    expect(units.sort()).toEqual([
      'flaps.service',
      'flaps.socket',
      'fleet-corrosion.service',
      'fleet-fly-proxy-backhaul.service',
      'fleet-fly-proxy-edge.service',
      'fleet-flyd.service',
    ]);
    const result = verify(units.map((unit) => join(unitsDir, unit)));
    expect(result.error).toBeUndefined();
    expect({ status: result.status, output: `${result.stdout}${result.stderr}`.trim() }).toEqual({
      status: 0,
      output: '',
    });
  });

  it('restarts can never leave two instances of a role; limits on every service', () => {
    for (const unit of units.filter((name) => name.endsWith('.service'))) {
      const unitSettings = settings(unit);
      expect(['mixed', 'control-group'], unit).toContain(unitSettings.KillMode);
      expect(unitSettings.Restart, unit).toBe('on-failure');
      expect(unitSettings.LimitNOFILE, unit).toMatch(/^\d+$/);
      expect(unitSettings.TasksMax, unit).toMatch(/^\d+$/);
      expect(unitSettings.ExecStart, unit).not.toMatch(/TOKEN/); // tokens come from the environment file
    }
    for (const unit of ['fleet-fly-proxy-edge.service', 'fleet-fly-proxy-backhaul.service'])
      expect(settings(unit).ExecStart).toMatch(
        /fly-proxy\/dist\/watchdog\/main\.js --state-dir \S+ -- --config /,
      );
    expect(settings('fleet-flyd.service').Requires).toBe('fleet-corrosion.service');
    expect(settings('flaps.service').Requires).toBe('flaps.socket');
  });

  it('host.js join writes a host config and units from the topology, with real addresses only', () => {
    const dir = mkdtempSync(join(tmpdir(), 'join-'));
    dirs.push(dir);
    const topology = JSON.parse(readFileSync(topologyFile, 'utf8')) as {
      hosts: { address?: string }[];
    };
    const join_ = (file: string, ...args: string[]) =>
      spawnSync(process.execPath, [hostJs, 'join', '--topology', file, ...args], {
        encoding: 'utf8',
      });
    // The harness's file has no real addresses: refused, naming the hosts.
    const refused = join_(topologyFile, '--host', 'lhr-w1', '--config-dir', join(dir, 'none'));
    expect(refused.status).toBe(2);
    expect(refused.stderr).toMatch(/real hosts need their "address"; missing for iad-e1/);
    topology.hosts.forEach((host, index) => {
      host.address = `203.0.113.${10 + index}`;
    });
    const realFile = join(dir, 'real.json');
    writeFileSync(realFile, JSON.stringify(topology));
    expect(join_(realFile, '--host', 'nope').stderr).toMatch(/no host "nope"/);
    for (const [hostId, expected] of [
      ['lhr-w1', ['corrosion', 'flyd', 'fly-proxy-backhaul']],
      ['iad-e1', ['corrosion', 'fly-proxy-edge', 'flaps']],
    ] as const) {
      const configDir = join(dir, hostId, 'etc');
      const hostUnits = join(dir, hostId, 'units');
      const result = join_(
        realFile,
        '--host',
        hostId,
        '--config-dir',
        configDir,
        '--units-dir',
        hostUnits,
        '--install-dir',
        '/srv/fleet/',
        '--init-secrets',
      );
      expect(result.status, result.stderr).toBe(0);
      // The units run the servers from --install-dir with the configs of --config-dir.
      for (const unit of readdirSync(hostUnits)) {
        const text = readFileSync(join(hostUnits, unit), 'utf8');
        expect(text, unit).not.toMatch(/\/opt\/fleet|\/etc\/fleet/);
        if (unit.endsWith('.service')) {
          expect(text, unit).toContain(`EnvironmentFile=${configDir}/secrets.env`);
          expect(text, unit).toMatch(/ExecStart=\/usr\/bin\/node \/srv\/fleet\/apps\/\S+\/dist\//);
          expect(text, unit).toMatch(new RegExp(`--config ${configDir}/[a-z-]+\\.json`));
        }
      }
      const configs = readdirSync(configDir).filter((name) => name.endsWith('.json'));
      expect(configs.sort()).toEqual(expected.map((name) => `${name}.json`).sort());
      for (const config of configs) {
        const server = config.startsWith('fly-proxy')
          ? 'fly-proxy'
          : (config.replace('.json', '') as 'corrosion' | 'flyd' | 'flaps');
        const help = execFileSync(
          process.execPath,
          [serverMain(server), ...(server === 'corrosion' ? ['agent'] : []), '--help'],
          { encoding: 'utf8' },
        );
        for (const key of Object.keys(JSON.parse(readFileSync(join(configDir, config), 'utf8'))))
          expect(help, `${config}: ${key}`).toContain(`--${key}`);
      }
      expect(readFileSync(join(configDir, 'corrosion.json'), 'utf8')).toMatch(
        /"gossip-addr": "203\.0\.113\.\d+:8788"/,
      );
      expect(verify(readdirSync(hostUnits).map((name) => join(hostUnits, name))).stderr).toBe('');
      expect(
        (readFileSync(join(configDir, 'secrets.env'), 'utf8').match(/TOKEN=/g) ?? []).length,
      ).toBe(3);
    }
  });
});
