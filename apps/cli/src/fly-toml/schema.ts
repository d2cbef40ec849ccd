/**
 * Fly's fly.toml (fly.io/docs/reference/configuration), the keys Fleet reads, as a JSON schema.
 * Keys it does not know are warned about, never refused: a fly.toml written for Fly keeps working.
 */
import { appNameSchema } from '@fleet/machine-config';

const duration = {
  type: ['string', 'integer'],
  pattern: '^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$',
  'x-rule': 'a duration like "10s", "500ms" or "5m" (or whole seconds)',
};
const size = {
  type: ['string', 'integer'],
  pattern: '^[0-9]+ ?([kKmMgG][bB]?)$',
  'x-rule': 'a size like "512mb", "1gb" (or megabytes)',
};
const port = { type: 'integer', minimum: 1, maximum: 65_535 };
const processes = { type: 'array', items: { type: 'string' } };
const autoStop = { enum: [true, false, 'off', 'stop', 'suspend'] };

const check = {
  type: 'object',
  properties: {
    type: { enum: ['http', 'tcp'] },
    port,
    interval: duration,
    timeout: duration,
    grace_period: duration,
    method: { type: 'string' },
    path: { type: 'string', pattern: '^/' },
    protocol: { enum: ['http', 'https'] },
    tls_skip_verify: { type: 'boolean' },
    headers: { type: 'object', additionalProperties: { type: 'string' } },
    processes,
  },
  additionalProperties: false,
};

const concurrency = {
  type: 'object',
  properties: {
    type: { enum: ['connections', 'requests'] },
    soft_limit: { type: 'integer', minimum: 1 },
    hard_limit: { type: 'integer', minimum: 1 },
  },
  additionalProperties: false,
};

const servicePort = {
  type: 'object',
  properties: {
    port,
    start_port: port,
    end_port: port,
    handlers: { type: 'array', items: { enum: ['http', 'tls', 'pg_tls', 'proxy_proto'] } },
    force_https: { type: 'boolean' },
    tls_options: { type: 'object' },
    http_options: { type: 'object' },
    proxy_proto_options: { type: 'object' },
  },
  additionalProperties: false,
};

const serviceCommon = {
  internal_port: port,
  auto_stop_machines: autoStop,
  auto_start_machines: { type: 'boolean' },
  min_machines_running: { type: 'integer', minimum: 0 },
  processes,
  concurrency,
};

export const flyTomlSchema = {
  type: 'object',
  required: ['app'],
  properties: {
    app: appNameSchema,
    primary_region: { type: 'string', pattern: '^[a-z0-9]{2,16}$' },
    kill_signal: { type: 'string', pattern: '^(SIG)?[A-Z0-9]+$' },
    kill_timeout: duration,
    swap_size_mb: { type: 'integer', minimum: 0 },
    console_command: { type: 'string' },
    build: {
      type: 'object',
      properties: {
        image: { type: 'string', minLength: 1 },
        dir: { type: 'string', minLength: 1 },
        dockerfile: { type: 'string' },
        builder: { type: 'string' },
        args: { type: 'object' },
      },
      additionalProperties: false,
    },
    deploy: {
      type: 'object',
      properties: {
        strategy: { enum: ['rolling', 'immediate', 'canary', 'bluegreen'] },
        max_unavailable: { type: 'number', exclusiveMinimum: 0 },
        release_command: { type: 'string' },
        wait_timeout: duration,
      },
      additionalProperties: false,
    },
    env: { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean'] } },
    http_service: {
      type: 'object',
      required: ['internal_port'],
      properties: {
        ...serviceCommon,
        force_https: { type: 'boolean' },
        checks: { type: 'array', items: check },
      },
      additionalProperties: false,
    },
    services: {
      type: 'array',
      items: {
        type: 'object',
        required: ['internal_port'],
        properties: {
          ...serviceCommon,
          protocol: { enum: ['tcp', 'udp'] },
          ports: { type: 'array', items: servicePort },
          tcp_checks: { type: 'array', items: check },
          http_checks: { type: 'array', items: check },
        },
        additionalProperties: false,
      },
    },
    checks: { type: 'object', additionalProperties: check },
    vm: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          size: {
            type: 'string',
            pattern: '^(shared-cpu|performance)-[0-9]+x$',
            'x-rule': 'a Fly size like shared-cpu-1x or performance-2x',
          },
          memory: size,
          memory_mb: { type: 'integer', minimum: 256 },
          cpus: { type: 'integer', minimum: 1 },
          cpu_kind: { enum: ['shared', 'performance'] },
          processes,
        },
        additionalProperties: false,
      },
    },
    mounts: {
      type: ['object', 'array'],
      properties: {
        source: { type: 'string', minLength: 1 },
        destination: { type: 'string', pattern: '^/' },
        initial_size: size,
        processes,
      },
      required: ['source', 'destination'],
    },
    processes: { type: 'object', additionalProperties: { type: 'string' } },
  },
  additionalProperties: false,
} as const;
