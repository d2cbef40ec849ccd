import { present } from '@fleet/service/invariant';
import { describe, expect, it } from 'vitest';
import { machineConfigOf } from '../src/fly-toml/machine-config.js';
import { mountOf } from '../src/fly-toml/mounts.js';
import { checkFlyToml } from '../src/fly-toml/read.js';

// fly.toml files in the shapes Fly's documentation and `fly launch` write them.
const launched = `# fly.toml app configuration file generated for shop
app = 'shop'
primary_region = 'ams'
kill_signal = 'SIGINT'
kill_timeout = '5s'

[build]
  image = 'hello'

[env]
  PORT = '8080'
  WORKERS = 4

[http_service]
  internal_port = 8080
  force_https = true
  auto_stop_machines = 'stop'
  auto_start_machines = true
  min_machines_running = 1
  processes = ['app']

  [http_service.concurrency]
    type = 'requests'
    soft_limit = 200
    hard_limit = 250

  [[http_service.checks]]
    grace_period = '10s'
    interval = '30s'
    method = 'GET'
    timeout = '5s'
    path = '/health'

[[vm]]
  memory = '1gb'
  cpu_kind = 'shared'
  cpus = 1
`;

const services = `app = "tcp-app"

[[services]]
  internal_port = 5432
  protocol = "tcp"

  [services.concurrency]
    type = "connections"
    hard_limit = 25
    soft_limit = 20

  [[services.ports]]
    handlers = ["pg_tls"]
    port = 5432

  [[services.tcp_checks]]
    interval = "15s"
    timeout = "2s"
    grace_period = "1s"

[[services]]
  internal_port = 8080

  [[services.ports]]
    handlers = ["http"]
    port = 80
    force_https = true

  [[services.ports]]
    handlers = ["tls", "http"]
    port = 443

  [[services.http_checks]]
    interval = 10000
    path = "/"

[checks]
  [checks.alive]
    type = "tcp"
    port = 5432
    interval = "15s"
    timeout = "10s"

[[vm]]
  size = "performance-2x"
`;

describe('fly.toml', () => {
  it("reads what `fly launch` writes into the machine config Fly's proxy and flyd take", () => {
    const { config, warnings } = checkFlyToml(launched, 'fly.toml');
    expect(warnings).toEqual([]);
    expect(config.app).toBe('shop');
    const machine = machineConfigOf(config, present(config.build?.image, '[build] image'));
    expect(machine).toMatchObject({
      image: 'hello',
      env: { PORT: '8080', WORKERS: '4' },
      guest: { cpu_kind: 'shared', cpus: 1, memory_mb: 1024 },
      stop_config: { signal: 'SIGINT', timeout: '5s' },
      services: [
        {
          protocol: 'tcp',
          internal_port: 8080,
          ports: [
            { port: 80, handlers: ['http'], force_https: true },
            { port: 443, handlers: ['tls', 'http'] },
          ],
          concurrency: { type: 'requests', soft_limit: 200, hard_limit: 250 },
          autostop: 'stop',
          autostart: true,
          min_machines_running: 1,
          checks: [
            {
              type: 'http',
              port: 8080,
              interval: '30s',
              timeout: '5s',
              grace_period: '10s',
              method: 'GET',
              path: '/health',
            },
          ],
        },
      ],
    });
  });

  it('reads [[services]] with ports, handlers, concurrency, tcp and http checks, and [checks]', () => {
    const { config, warnings } = checkFlyToml(services, 'fly.toml');
    expect(warnings).toEqual([]);
    const machine = machineConfigOf(config, 'hello') as {
      services: { internal_port: number; checks: { type: string; interval?: string }[] }[];
      checks: Record<string, unknown>;
      guest: unknown;
    };
    expect(machine.services.map((service) => service.internal_port)).toEqual([5432, 8080]);
    expect(machine.services[0]?.checks).toEqual([
      { type: 'tcp', port: 5432, interval: '15s', timeout: '2s', grace_period: '1s' },
    ]);
    expect(machine.services[1]?.checks[0]).toMatchObject({ type: 'http', interval: '10000s' });
    expect(machine.checks.alive).toMatchObject({ type: 'tcp', port: 5432 });
    expect(machine.guest).toEqual({ cpu_kind: 'performance', cpus: 2, memory_mb: 4096 });
  });

  it('warns about keys it does not know, with their line, and goes on', () => {
    const source = `app = "shop"
swap_size_mb = 512

[experimental]
  auto_rollback = true

[build]
  image = "hello"
  build-target = "production"

[metrics]
  port = 9091
  path = "/metrics"
`;
    const { warnings } = checkFlyToml(source, 'fly.toml');
    expect(warnings).toEqual([
      'fly.toml:4: unknown key experimental (ignored)',
      'fly.toml:9: unknown key build.build-target (ignored)',
      'fly.toml:11: unknown key metrics (ignored)',
    ]);
  });

  it('names the bad key and its line, for each problem', () => {
    const source = `app = "shop"

[http_service]
  internal_port = "eighty"
  auto_stop_machines = "sometimes"

[[vm]]
  memory = "lots"

[deploy]
  strategy = "yolo"
`;
    expect(() => checkFlyToml(source, 'fly.toml')).toThrow(
      [
        'fly.toml:4: http_service.internal_port must be integer',
        'fly.toml:5: http_service.auto_stop_machines must be one of true, false, "off", "stop", "suspend"',
        'fly.toml:8: vm[0].memory must be a size like "512mb", "1gb" (or megabytes)',
        'fly.toml:11: deploy.strategy must be one of "rolling", "immediate", "canary", "bluegreen"',
      ].join('\n'),
    );
    expect(() => checkFlyToml('primary_region = "ams"\n', 'fly.toml')).toThrow(
      'fly.toml: app is required',
    );
    expect(() => checkFlyToml('app = "shop"\n[env\n', 'fly.toml')).toThrow(
      /fly.toml is not valid TOML \(line 2\)/,
    );
  });

  it('reads [mounts] as one volume per machine, sized in whole gigabytes', () => {
    const mount = (text: string) =>
      mountOf(checkFlyToml(`app = "shop"\n${text}`, 'fly.toml').config);
    expect(mount('[mounts]\n  source = "data"\n  destination = "/data"\n')).toEqual({
      source: 'data',
      destination: '/data',
      sizeGb: 1,
    });
    expect(
      mount('[[mounts]]\n  source = "pg"\n  destination = "/pg"\n  initial_size = "10gb"\n'),
    ).toEqual({ source: 'pg', destination: '/pg', sizeGb: 10 });
    expect(
      mount('[mounts]\n  source = "d"\n  destination = "/d"\n  initial_size = "1500mb"\n'),
    ).toMatchObject({ sizeGb: 2 });
    expect(mount('')).toBeUndefined();
    expect(() =>
      mount(
        '[[mounts]]\n  source = "a"\n  destination = "/a"\n[[mounts]]\n  source = "b"\n  destination = "/b"\n',
      ),
    ).toThrow(/2 \[\[mounts\]\]: a machine mounts one volume/);
    // The machine config itself carries no mount: each machine gets its own volume at deploy.
    const { config } = checkFlyToml(
      'app = "shop"\n[mounts]\n  source = "data"\n  destination = "/data"\n',
      'fly.toml',
    );
    expect(machineConfigOf(config, 'hello').mounts).toBeUndefined();
  });

  it('refuses what it cannot deploy, saying why', () => {
    const huge = checkFlyToml(
      'app = "shop"\n[[vm]]\n  size = "shared-cpu-1x"\n  memory = "64gb"\n',
      'f',
    );
    expect(() => machineConfigOf(huge.config, 'hello')).toThrow(/config.guest.memory_mb must be/);
  });
});
