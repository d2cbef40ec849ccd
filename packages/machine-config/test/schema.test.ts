import { describe, expect, it } from 'vitest';
import {
  appNameSchema,
  checkMachineConfig,
  compileCheck,
  guestOf,
  MachineConfigError,
  machineConfigSchema,
  machineNameSchema,
  memoryMbMax,
  memoryMbMin,
  type SchemaNode,
  snapshotIdSchema,
  volumeIdSchema,
  volumeNameSchema,
} from '../src/index.js';

/** The problem with a config, as the validator says it; undefined when it passes. */
function problem(config: unknown): { field: string; message: string } | undefined {
  try {
    checkMachineConfig(config);
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(MachineConfigError);
    const { field, message } = error as MachineConfigError;
    return { field, message };
  }
}

const hello = {
  image: 'hello',
  services: [{ protocol: 'tcp', internal_port: 8080, ports: [{ port: 80, handlers: ['http'] }] }],
};

/** What flyctl sends for a typical app (fly-go's MachineConfig), unknown fields and all. */
const flyctlConfig = {
  env: { PRIMARY_REGION: 'ams', FLY_PROCESS_GROUP: 'app' },
  init: {},
  guest: { cpu_kind: 'shared', cpus: 1, memory_mb: 1024 },
  metadata: { fly_platform_version: 'v2', fly_process_group: 'app', fly_release_version: '3' },
  services: [
    {
      protocol: 'tcp',
      internal_port: 8080,
      autostop: 'stop',
      autostart: true,
      min_machines_running: 0,
      ports: [
        { port: 80, handlers: ['http'], force_https: true },
        { port: 443, handlers: ['tls', 'http'] },
      ],
      concurrency: { type: 'connections', hard_limit: 25, soft_limit: 20 },
      force_instance_key: null,
    },
  ],
  image: 'registry.fly.io/shop:deployment-01HABCDEF',
  restart: { policy: 'on-failure', max_retries: 10 },
  stop_config: { timeout: '5s', signal: 'SIGINT' },
  checks: {
    alive: { type: 'http', port: 8080, interval: '15s', timeout: '2s', method: 'GET', path: '/up' },
  },
  files: [{ guest_path: '/etc/app.conf', raw_value: 'aGVsbG8=', mode: 0o644 }],
  mounts: [{ volume: 'vol_0123456789abcdef', path: '/data', name: 'data' }],
  dns: { skip_registration: false },
  processes: [{ name: 'app', cmd: ['node', 'server.js'] }],
};

// Each bad config is refused with one sentence naming the field and what it must be; the table
// holds every case the hardening issues name (a string memory, negative and huge sizes, env
// names with "=", NUL bytes, a trailing-slash file path, unknown enums, negative retries...).
describe('the machine config schema refuses bad configs, naming the field', () => {
  const cases: [string, Record<string, unknown>, string, RegExp | string][] = [
    [
      'memory as a string',
      { guest: { memory_mb: '512' } },
      'config.guest.memory_mb',
      'must be an integer >= 256',
    ],
    [
      'negative memory',
      { guest: { memory_mb: -5 } },
      'config.guest.memory_mb',
      'must be an integer >= 256',
    ],
    [
      '50 GB on one shared CPU',
      { guest: { memory_mb: 51_200 } },
      'config.guest.memory_mb',
      /<= 2048 for a shared-cpu-1x/,
    ],
    [
      '95 TB',
      { guest: { cpu_kind: 'performance', cpus: 16, memory_mb: 95 * 1024 * 1024 } },
      'config.guest.memory_mb',
      /<= 131072 for a performance-16x/,
    ],
    [
      'memory off the 256 MB steps',
      { guest: { memory_mb: 300 } },
      'config.guest.memory_mb',
      'a multiple of 256',
    ],
    [
      'too little memory for the size',
      { guest: { cpus: 2, memory_mb: 256 } },
      'config.guest.memory_mb',
      />= 512 and <= 4096 for a shared-cpu-2x/,
    ],
    [
      'performance memory',
      { guest: { cpu_kind: 'performance', memory_mb: 1024 } },
      'config.guest.memory_mb',
      />= 2048 and <= 8192 for a performance-1x/,
    ],
    [
      'cpus as a word',
      { guest: { cpus: 'two' } },
      'config.guest.cpus',
      /must be the integer 1, 2, 4 or 8/,
    ],
    [
      'negative cpus',
      { guest: { cpus: -1 } },
      'config.guest.cpus',
      /must be the integer 1, 2, 4 or 8/,
    ],
    [
      'huge cpus',
      { guest: { cpu_kind: 'performance', cpus: 1000 } },
      'config.guest.cpus',
      /one of 1, 2, 4, 8, 16/,
    ],
    [
      '16 shared cpus',
      { guest: { cpus: 16, memory_mb: 4096 } },
      'config.guest.cpus',
      /16 needs cpu_kind performance/,
    ],
    [
      'unknown cpu kind',
      { guest: { cpu_kind: 'turbo' } },
      'config.guest.cpu_kind',
      'one of "shared", "performance"',
    ],
    [
      'env name with =',
      { env: { 'A=B': 'x' } },
      'config.env',
      'config.env name "A=B" must be a variable name without "="',
    ],
    ['empty env name', { env: { '': 'x' } }, 'config.env', 'config.env name "" must be'],
    ['env value with NUL', { env: { A: 'x\u0000y' } }, 'config.env.A', 'without NUL bytes'],
    ['env value not a string', { env: { PORT: 8080 } }, 'config.env.PORT', 'must be a string'],
    ['env not a map', { env: ['A=B'] }, 'config.env', 'must be an object'],
    [
      'restart policy sometimes',
      { restart: { policy: 'sometimes' } },
      'config.restart.policy',
      'one of "no", "always", "on-failure"',
    ],
    [
      'negative max_retries',
      { restart: { max_retries: -1 } },
      'config.restart.max_retries',
      'must be an integer >= 0',
    ],
    [
      'file path with trailing slash',
      { files: [{ guest_path: '/server.mjs/', raw_value: '' }] },
      'config.files[0].guest_path',
      'no trailing slash',
    ],
    [
      'relative file path',
      { files: [{ guest_path: 'etc/x', raw_value: '' }] },
      'config.files[0].guest_path',
      'an absolute file path',
    ],
    [
      'file path with ..',
      { files: [{ guest_path: '/a/../../etc/passwd', raw_value: '' }] },
      'config.files[0].guest_path',
      '".." segment',
    ],
    [
      'file path with NUL',
      { files: [{ guest_path: '/a\u0000b', raw_value: '' }] },
      'config.files[0].guest_path',
      'an absolute file path',
    ],
    [
      'file without a path',
      { files: [{ raw_value: '' }] },
      'config.files[0].guest_path',
      'config.files[0].guest_path is required',
    ],
    [
      'file not base64',
      { files: [{ guest_path: '/x', raw_value: '***' }] },
      'config.files[0].raw_value',
      'base64',
    ],
    [
      'file mode',
      { files: [{ guest_path: '/x', raw_value: '', mode: 0o10000 }] },
      'config.files[0].mode',
      'a file mode',
    ],
    [
      'port 0',
      { services: [{ internal_port: 0 }] },
      'config.services[0].internal_port',
      'must be an integer >= 1 and <= 65535',
    ],
    [
      'service without a port',
      { services: [{ ports: [{ port: 80 }] }] },
      'config.services[0].internal_port',
      'is required',
    ],
    [
      'unknown handler',
      { services: [{ internal_port: 8080, ports: [{ port: 80, handlers: ['smtp'] }] }] },
      'config.services[0].ports[0].handlers[0]',
      '"http", "tls"',
    ],
    [
      'unknown protocol',
      { services: [{ internal_port: 8080, protocol: 'sctp' }] },
      'config.services[0].protocol',
      'one of "tcp", "udp"',
    ],
    [
      'zero hard limit',
      { services: [{ internal_port: 8080, concurrency: { hard_limit: 0 } }] },
      'config.services[0].concurrency.hard_limit',
      '>= 1',
    ],
    [
      'autostop mode',
      { services: [{ internal_port: 8080, autostop: 'sleep' }] },
      'config.services[0].autostop',
      '"suspend"',
    ],
    [
      'check type',
      { checks: { alive: { type: 'udp' } } },
      'config.checks.alive.type',
      'one of "tcp", "http"',
    ],
    [
      'check interval',
      { checks: { alive: { type: 'tcp', interval: 'soon' } } },
      'config.checks.alive.interval',
      'a duration like "10s"',
    ],
    [
      'check name',
      { checks: { 'up now!': { type: 'tcp' } } },
      'config.checks',
      'config.checks name "up now!"',
    ],
    [
      'mount at /',
      { mounts: [{ volume: 'vol_0123456789abcdef', path: '/' }] },
      'config.mounts[0].path',
      'not /',
    ],
    [
      'two mounts',
      {
        mounts: [
          { volume: 'vol_0123456789abcdef', path: '/a' },
          { volume: 'vol_0123456789abcdeg', path: '/b' },
        ],
      },
      'config.mounts',
      'at most one mount',
    ],
    [
      'root size',
      { rootfs: { size_gb: 0 } },
      'config.rootfs.size_gb',
      'an integer >= 1 and <= 500',
    ],
    [
      'root kept across starts',
      { rootfs: { persist: 'always' } },
      'config.rootfs.persist',
      'restart and always are not supported',
    ],
    [
      'mount without a volume',
      { mounts: [{ path: '/data' }] },
      'config.mounts[0].volume',
      'is required',
    ],
    [
      'stop signal',
      { stop_config: { signal: 'SIGNOPE' } },
      'config.stop_config.signal',
      'a signal like SIGINT',
    ],
    [
      'stop timeout word',
      { stop_config: { timeout: 'soon' } },
      'config.stop_config.timeout',
      'a duration',
    ],
    [
      'stop timeout over 600 s',
      { stop_config: { timeout: 601 } },
      'config.stop_config.timeout',
      'up to 600',
    ],
    ['empty exec', { init: { exec: [] } }, 'config.init.exec', 'at least 1'],
    [
      'NUL in an argument',
      { init: { exec: ['node', 'a\u0000'] } },
      'config.init.exec[1]',
      'without NUL bytes',
    ],
    ['metadata value', { metadata: { team: 7 } }, 'config.metadata.team', 'must be a string'],
    ['metadata key', { metadata: { 'a b': 'x' } }, 'config.metadata', 'config.metadata name "a b"'],
    ['auto_destroy', { auto_destroy: 'yes' }, 'config.auto_destroy', 'must be true or false'],
    ['schedule', { schedule: 'sometimes' }, 'config.schedule', '"hourly"'],
    ['image with a space', { image: 'hello world' }, 'config.image', 'an image reference'],
    ['no image', { image: undefined }, 'config.image', 'config.image is required'],
  ];

  it.each(cases)('%s', (_name, change, field, expected) => {
    const found = problem({ ...hello, ...change });
    expect(found?.field).toBe(field);
    if (typeof expected === 'string') expect(found?.message).toContain(expected);
    else expect(found?.message).toMatch(expected);
    expect(found?.message.startsWith(field)).toBe(true);
  });

  it('refuses a config that is not an object', () => {
    expect(problem('hello')).toEqual({ field: 'config', message: 'config must be an object' });
    expect(problem(null)?.message).toBe('config must be an object');
  });

  // A value is never repeated in the message (env values may be secrets); names are, cut short.
  it('never echoes a value, and cuts a long name', () => {
    expect(problem({ ...hello, env: { TOKEN: 's3cret\u0000' } })?.message).not.toContain('s3cret');
    const long = `${'N'.repeat(300)}=`;
    const message = problem({ ...hello, env: { [long]: 'x' } })?.message ?? '';
    expect(message).toContain(`"${'N'.repeat(64)}…"`);
    expect(message.length).toBeLessThan(200);
  });
});

describe('the machine config schema accepts what Fly clients send', () => {
  it('accepts the hello config and a flyctl config, and changes neither', () => {
    for (const config of [hello, flyctlConfig]) {
      const before = structuredClone(config);
      expect(problem(config)).toBeUndefined();
      expect(config).toEqual(before); // nothing filled in, converted or removed
    }
  });

  // Fly decodes into structs and drops what it does not know; Fleet keeps it (README).
  it('keeps unknown fields, at the top and inside known objects', () => {
    const config = { ...hello, lsvd: true, guest: { cpus: 1, gpus: 0, kernel_args: ['x'] } };
    expect(problem(config)).toBeUndefined();
    expect(config).toMatchObject({ lsvd: true, guest: { gpus: 0 } });
  });

  it("accepts every Fly size's memory range and the stop signals Fly takes", () => {
    const sizes: [string, number, number, number][] = [
      ['shared', 1, 256, 2048],
      ['shared', 8, 2048, 16_384],
      ['performance', 1, 2048, 8192],
      ['performance', 16, 32_768, 131_072],
    ];
    for (const [cpu_kind, cpus, low, high] of sizes) {
      for (const memory_mb of [low, high])
        expect(problem({ ...hello, guest: { cpu_kind, cpus, memory_mb } })).toBeUndefined();
      expect(problem({ ...hello, guest: { cpu_kind, cpus, memory_mb: high + 256 } })).toBeDefined();
    }
    for (const signal of ['SIGINT', 'INT', 2, 'SIGUSR1'])
      expect(problem({ ...hello, stop_config: { signal, timeout: 10 } })).toBeUndefined();
  });
});

describe('guestOf', () => {
  it("fills in Fly's preset defaults", () => {
    expect(guestOf({})).toEqual({ cpuKind: 'shared', cpus: 1, memoryMb: 256 });
    expect(guestOf({ guest: { cpus: 4 } })).toEqual({ cpuKind: 'shared', cpus: 4, memoryMb: 1024 });
    expect(guestOf({ guest: { cpu_kind: 'performance', cpus: 2 } })).toEqual({
      cpuKind: 'performance',
      cpus: 2,
      memoryMb: 4096,
    });
    expect(guestOf({ guest: { memory_mb: 512 } }).memoryMb).toBe(512);
  });

  it('gives capacity math only whole numbers in range, even for a config that skipped the schema', () => {
    // Rows stored before the schema existed: a string, a negative, a fraction, a huge number.
    expect(guestOf({ guest: { memory_mb: '512' } })).toEqual({
      cpuKind: 'shared',
      cpus: 1,
      memoryMb: 256,
    });
    expect(guestOf({ guest: { memory_mb: -51_200 } }).memoryMb).toBe(memoryMbMin);
    expect(guestOf({ guest: { memory_mb: 1e12 } }).memoryMb).toBe(memoryMbMax);
    expect(guestOf({ guest: { memory_mb: 300.5 } }).memoryMb).toBe(256);
    expect(guestOf({ guest: { cpus: '2' } }).cpus).toBe(1);
    expect(guestOf({ guest: { cpus: -4 } }).cpus).toBe(1);
    expect(guestOf({ guest: { cpus: 16 } }).cpus).toBe(1); // 16 only for performance
    expect(guestOf({ guest: { cpu_kind: 'performance', cpus: 16 } }).cpus).toBe(16);
    expect(guestOf({ guest: 'big' })).toEqual({ cpuKind: 'shared', cpus: 1, memoryMb: 256 });
  });
});

describe('machine names', () => {
  const check = compileCheck(machineNameSchema, 'name');
  it("take Fly's naming rules: no slash, newline, space or shell character", () => {
    for (const name of ['web-1', 'shop_worker', 'A1', 'x'.repeat(63)])
      expect(check(name), name).toBeUndefined();
    for (const name of [
      'a/b',
      'a\nb',
      'a b',
      'a;rm',
      '$(id)',
      '`id`',
      'a|b',
      '-x',
      '',
      'x'.repeat(64),
    ])
      expect(check(name)?.message, JSON.stringify(name)).toMatch(
        /^name must be a name of at most 63/,
      );
  });
});

// Every rule that a type and range cannot say (a pattern, a list of names) says itself in words,
// so no message ever shows a regular expression.
describe('every pattern has its rule in words', () => {
  it('x-rule sits beside every pattern and propertyNames', () => {
    const missing: string[] = [];
    const walk = (node: unknown, at: string) => {
      if (node === null || typeof node !== 'object') return;
      const schema = node as SchemaNode;
      if (typeof schema.pattern === 'string' && typeof schema['x-rule'] !== 'string')
        missing.push(at);
      for (const [key, value] of Object.entries(schema)) walk(value, `${at}/${key}`);
    };
    walk(machineConfigSchema, '#');
    walk(machineNameSchema, '#name');
    walk(appNameSchema, '#app');
    walk(volumeNameSchema, '#volume-name');
    walk(volumeIdSchema, '#volume-id');
    walk(snapshotIdSchema, '#snapshot-id');
    expect(missing).toEqual([]);
  });
});

// Inside a request body (as flaps and flyd check it), fields are named from the body.
describe('a request body that embeds the config', () => {
  const check = compileCheck({
    type: 'object',
    required: ['config'],
    properties: { config: machineConfigSchema, name: machineNameSchema },
  });
  it('names fields from the body, and the body itself as body', () => {
    expect(check({ name: 'x' })).toEqual({ field: 'config', message: 'config is required' });
    expect(check({ config: { image: 'hello', guest: { cpus: 3 } } })?.field).toBe(
      'config.guest.cpus',
    );
    expect(check({ config: { image: 'hello' }, name: 'a/b' })?.field).toBe('name');
    expect(check(null)).toEqual({ field: 'body', message: 'body must be an object' });
    expect(check({ config: { image: 'hello' } })).toBeUndefined();
  });
});
