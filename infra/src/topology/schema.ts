/**
 * JSON Schema of a topology file (validated with ajv, as flaps and machine-config do). Cross
 * references — a host's region exists, ids are unique — are checked after it, in `load.ts`.
 */
export const topologySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['regions', 'hosts'],
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 64 },
    description: { type: 'string', maxLength: 1000 },
    /** Multiplies the great-circle fibre time: real routes are longer than the shortest path. */
    route_factor: { type: 'number', minimum: 1, maximum: 5 },
    /** One-way delay between two hosts of one region. */
    intra_region_latency_ms: { type: 'number', minimum: 0, maximum: 100 },
    regions: {
      type: 'array',
      minItems: 1,
      maxItems: 32,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['code', 'name', 'lat', 'lon'],
        properties: {
          code: { type: 'string', pattern: '^[a-z][a-z0-9]{1,15}$' },
          name: { type: 'string', minLength: 1, maxLength: 100 },
          lat: { type: 'number', minimum: -90, maximum: 90 },
          lon: { type: 'number', minimum: -180, maximum: 180 },
        },
      },
    },
    hosts: {
      type: 'array',
      minItems: 1,
      maxItems: 64,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'region', 'roles'],
        properties: {
          // Short: it names network namespaces and systemd instances.
          id: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,19}$' },
          region: { type: 'string', pattern: '^[a-z][a-z0-9]{1,15}$' },
          roles: {
            type: 'array',
            minItems: 1,
            uniqueItems: true,
            items: { enum: ['edge', 'worker'] },
          },
          cpus: { type: 'integer', minimum: 1, maximum: 1024 },
          memory_mb: { type: 'integer', minimum: 256, maximum: 16777216 },
          /** The real server's address (`host.js join`); the local harness assigns its own. */
          address: {
            type: 'string',
            pattern: '^(\\d{1,3}(\\.\\d{1,3}){3}|[0-9a-fA-F:]*:[0-9a-fA-F:.]*)$',
            maxLength: 45,
          },
          /** Runs the Machines API (flaps). Default: the first edge. */
          api: { type: 'boolean' },
        },
      },
    },
    links: {
      type: 'array',
      maxItems: 528,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['between'],
        properties: {
          between: {
            type: 'array',
            minItems: 2,
            maxItems: 2,
            items: { type: 'string', pattern: '^[a-z][a-z0-9]{1,15}$' },
          },
          latency_ms: { type: 'number', minimum: 0, maximum: 5000 },
          loss: { type: 'number', minimum: 0, maximum: 1 },
        },
      },
    },
  },
} as const;
