import { duration, integer, map, object, port, type SchemaNode, text } from './rules.js';

/** Fly's proxy handlers for a public port. */
export const portHandlers = ['http', 'tls', 'pg_tls', 'proxy_proto'] as const;
export const checkTypes = ['tcp', 'http'] as const;
export const httpMethods = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

/** Fly's `MachineCheck`: a TCP connect or an HTTP request against the machine. */
export const checkSchema: SchemaNode = object({
  type: { type: 'string', enum: checkTypes },
  port,
  interval: duration(3_600),
  timeout: duration(3_600),
  grace_period: duration(3_600),
  method: { type: 'string', enum: httpMethods },
  path: text(2_048, {
    pattern: '^/[^\\u0000\\s]*$',
    'x-rule': 'a request path starting with / (no spaces or NUL bytes)',
  }),
  protocol: { type: 'string', enum: ['http', 'https'] },
  tls_skip_verify: { type: 'boolean' },
  tls_server_name: text(253),
  headers: {
    type: 'array',
    maxItems: 64,
    items: object(
      {
        name: text(256, { minLength: 1 }),
        values: { type: 'array', maxItems: 64, items: text(8_192) },
      },
      { required: ['name'] },
    ),
  },
  kind: { type: 'string', enum: ['informational', 'readiness'] },
});

/** Fly's `checks`: a map of check names to checks. */
export const checksSchema: SchemaNode = map(
  {
    type: 'string',
    minLength: 1,
    maxLength: 64,
    pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]*$',
    'x-rule': 'a check name of letters, digits, "_", "." and "-" (at most 64)',
  },
  checkSchema,
  64,
);

/** Fly's `MachinePort`: a public port (or a range) and its handlers. */
const portSchema: SchemaNode = object({
  port,
  start_port: port,
  end_port: port,
  handlers: {
    type: 'array',
    maxItems: 8,
    uniqueItems: true,
    items: { type: 'string', enum: portHandlers },
  },
  force_https: { type: 'boolean' },
  tls_options: { type: 'object' },
  http_options: { type: 'object' },
  proxy_proto_options: { type: 'object' },
});

/** Fly's `MachineServiceConcurrency`. */
const concurrencySchema: SchemaNode = object({
  type: { type: 'string', enum: ['connections', 'requests'] },
  hard_limit: integer(1, 1_000_000),
  soft_limit: integer(1, 1_000_000),
});

/** Fly's `MachineService`: what the proxy routes to the machine's `internal_port`. */
export const serviceSchema: SchemaNode = object(
  {
    protocol: { type: 'string', enum: ['tcp', 'udp'] },
    internal_port: port,
    ports: { type: 'array', maxItems: 64, items: portSchema },
    concurrency: concurrencySchema,
    autostart: { type: 'boolean' },
    // fly-go's MachineAutostop reads a boolean (old clients) or a mode.
    autostop: {
      type: ['boolean', 'string'],
      enum: [true, false, 'off', 'stop', 'suspend'],
    },
    min_machines_running: integer(0, 1_000),
    checks: { type: 'array', maxItems: 64, items: checkSchema },
    force_instance_key: { type: ['string', 'null'], maxLength: 256 },
  },
  { required: ['internal_port'] },
);
