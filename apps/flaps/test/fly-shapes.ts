import { Ajv, type ValidateFunction } from 'ajv';
import { hello } from './fleet.js';

/**
 * The response shapes Fly's clients decode, as JSON schemas: the fields fly-go's types read
 * (`machine_types.go`, `flaps/*.go`), with the types Go's decoder insists on (a string where an
 * int64 is expected fails the whole decode) and the formats Fly documents. Extra fields are
 * allowed: clients ignore them.
 */
export const patterns = {
  machineId: '^[0-9a-f]{14}$',
  ulid: '^[0-9A-HJKMNP-TV-Z]{26}$',
  rfc3339: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?(Z|[+-]\\d{2}:\\d{2})$',
  leaseNonce: '^[0-9a-f]{12}$',
  tokenId: '^[0-9a-f]{16}$',
} as const;

const string = { type: 'string' };
const integer = { type: 'integer' };
const unsigned = { type: 'integer', minimum: 0 };
const timestamp = { type: 'string', pattern: patterns.rfc3339 };
const ulid = { type: 'string', pattern: patterns.ulid };
const machineStates = [
  ...['created', 'starting', 'started', 'stopping', 'stopped', 'suspending', 'suspended'],
  ...['replacing', 'replaced', 'destroying', 'destroyed', 'failed'],
];

const event = {
  type: 'object',
  required: ['type', 'status', 'source', 'timestamp'],
  properties: {
    type: string,
    status: string,
    source: string,
    // fly-go: `Timestamp int64` (unix milliseconds).
    timestamp: { type: 'integer', minimum: 1_000_000_000_000 },
    request: { type: 'object' },
  },
};

const check = {
  type: 'object',
  required: ['name', 'status', 'output', 'updated_at'],
  properties: {
    name: string,
    status: { enum: ['passing', 'warning', 'critical'] },
    output: string,
    updated_at: timestamp,
  },
};

const machine = {
  type: 'object',
  required: [
    ...['id', 'name', 'state', 'region', 'instance_id', 'version', 'private_ip', 'config'],
    ...['image_ref', 'created_at', 'updated_at', 'events'],
  ],
  properties: {
    id: { type: 'string', pattern: patterns.machineId },
    name: string,
    state: { enum: machineStates },
    region: { type: 'string', minLength: 1 },
    instance_id: ulid,
    version: ulid,
    private_ip: { type: ['string', 'null'] },
    config: {
      type: 'object',
      properties: { image: string, env: { type: 'object' }, services: { type: 'array' } },
    },
    image_ref: {
      type: 'object',
      required: ['registry', 'repository', 'tag', 'digest'],
      properties: {
        registry: string,
        repository: { type: 'string', minLength: 1 },
        tag: string,
        digest: string,
        labels: { type: 'object', additionalProperties: string },
      },
    },
    created_at: timestamp,
    updated_at: timestamp,
    events: { type: 'array', items: event },
    checks: { type: 'array', items: check },
    cordoned: { type: 'boolean' },
    nonce: string,
  },
};

const app = {
  type: 'object',
  required: ['id', 'name', 'status', 'network', 'organization'],
  properties: {
    id: string,
    name: string,
    status: string,
    network: { type: 'string', minLength: 1 },
    organization: {
      type: 'object',
      required: ['name', 'slug'],
      properties: { name: string, slug: string },
    },
    machine_count: integer,
    created_at: timestamp,
  },
};

const ok = {
  type: 'object',
  required: ['ok'],
  properties: { ok: { const: true } },
};

const lease = {
  type: 'object',
  required: ['status', 'data'],
  properties: {
    status: { const: 'success' },
    data: {
      type: 'object',
      required: ['nonce', 'expires_at', 'owner', 'description', 'version'],
      properties: {
        nonce: { type: 'string', pattern: patterns.leaseNonce },
        // fly-go: `ExpiresAt int64` (unix seconds).
        expires_at: { type: 'integer', minimum: 1_000_000_000, maximum: 99_999_999_999 },
        owner: string,
        description: string,
        version: string,
      },
    },
  },
};

/** Fly's error body: `{"error": "<code>: message", "status"?}` (our `code` beside it). */
export const errorShape = {
  type: 'object',
  required: ['error', 'code'],
  properties: {
    error: { type: 'string', pattern: '^([a-z_]+: .+|app not found)$' },
    code: { type: 'string', pattern: '^[A-Z_]+$' },
    status: { enum: ['name_taken', 'insufficient_capacity'] },
  },
};

export const shapes = {
  machine,
  machines: { type: 'array', items: machine },
  events: { type: 'array', items: event },
  app,
  apps: {
    type: 'object',
    required: ['total_apps', 'apps'],
    properties: { total_apps: integer, apps: { type: 'array', items: app } },
  },
  ok,
  none: { type: 'null' },
  wait: {
    type: 'object',
    required: ['ok', 'state', 'version'],
    properties: { ok: { const: true }, state: { enum: machineStates }, version: ulid },
  },
  start: {
    type: 'object',
    required: ['previous_state'],
    properties: { previous_state: { enum: machineStates }, migrated: { type: 'boolean' } },
  },
  lease,
  metadata: { type: 'object', additionalProperties: string },
  versions: {
    type: 'array',
    minItems: 1,
    items: {
      type: 'object',
      required: ['version', 'user_config', 'created_at'],
      properties: { version: ulid, user_config: { type: 'object' }, created_at: timestamp },
    },
  },
  ps: {
    type: 'array',
    minItems: 1,
    items: {
      type: 'object',
      required: ['pid', 'stime', 'rtime', 'command', 'directory', 'cpu', 'rss'],
      // fly-go: pid int32, the times and sizes uint64 (a negative number fails the decode).
      properties: {
        pid: { type: 'integer', minimum: 1 },
        stime: unsigned,
        rtime: unsigned,
        command: string,
        directory: string,
        cpu: unsigned,
        rss: unsigned,
      },
    },
  },
  exec: {
    type: 'object',
    required: ['exit_code', 'stdout', 'stderr'],
    properties: { exit_code: integer, exit_signal: integer, stdout: string, stderr: string },
  },
  regions: {
    type: 'object',
    required: ['regions'],
    properties: {
      regions: {
        type: 'array',
        items: {
          type: 'object',
          required: ['code', 'name'],
          // fly-go's Region: latitude and longitude are float32 (null decodes as zero).
          properties: {
            code: string,
            name: string,
            latitude: { type: ['number', 'null'] },
            longitude: { type: ['number', 'null'] },
            workers: integer,
            memory_mb_free: integer,
          },
        },
      },
    },
  },
  placements: {
    type: 'object',
    required: ['regions'],
    properties: {
      regions: {
        type: 'array',
        items: {
          type: 'object',
          required: ['region', 'count'],
          properties: { region: string, count: { type: 'integer', minimum: 1 } },
        },
      },
    },
  },
  token: {
    type: 'object',
    required: ['id', 'token', 'org_slug', 'name'],
    properties: {
      id: { type: 'string', pattern: patterns.tokenId },
      token: { type: 'string', minLength: 20 },
      org_slug: string,
      name: string,
    },
  },
  revoked: {
    type: 'object',
    required: ['ok', 'revoked'],
    properties: { ok: { const: true }, revoked: unsigned },
  },
  error: errorShape,
} as const;

export type ShapeName = keyof typeof shapes;

/**
 * Every operation of the API with the shape of its success answer: the contract suite calls each
 * one, and fails when `/openapi.json` holds an operation this list lacks. A new route gets a line
 * here and a contract test (volumes: `'GET /v1/apps/{app}/volumes': 'volumes'`, ...).
 */
export const contractOperations: Record<string, ShapeName> = {
  'POST /v1/apps': 'app',
  'GET /v1/apps': 'apps',
  'GET /v1/apps/{app}': 'app',
  'DELETE /v1/apps/{app}': 'none',
  'POST /v1/tokens': 'token',
  'DELETE /v1/tokens/{id}': 'revoked',
  'POST /v1/apps/{app}/machines': 'machine',
  'GET /v1/apps/{app}/machines': 'machines',
  'GET /v1/apps/{app}/machines/{id}': 'machine',
  'POST /v1/apps/{app}/machines/{id}': 'machine',
  'DELETE /v1/apps/{app}/machines/{id}': 'ok',
  'GET /v1/apps/{app}/machines/{id}/events': 'events',
  'POST /v1/apps/{app}/machines/{id}/start': 'start',
  'POST /v1/apps/{app}/machines/{id}/stop': 'ok',
  'POST /v1/apps/{app}/machines/{id}/restart': 'ok',
  'POST /v1/apps/{app}/machines/{id}/signal': 'ok',
  'POST /v1/apps/{app}/machines/{id}/suspend': 'ok',
  'GET /v1/apps/{app}/machines/{id}/wait': 'wait',
  'POST /v1/apps/{app}/machines/{id}/cordon': 'ok',
  'POST /v1/apps/{app}/machines/{id}/uncordon': 'ok',
  'GET /v1/apps/{app}/machines/{id}/lease': 'lease',
  'POST /v1/apps/{app}/machines/{id}/lease': 'lease',
  'DELETE /v1/apps/{app}/machines/{id}/lease': 'ok',
  'GET /v1/apps/{app}/machines/{id}/metadata': 'metadata',
  'POST /v1/apps/{app}/machines/{id}/metadata/{key}': 'none',
  'DELETE /v1/apps/{app}/machines/{id}/metadata/{key}': 'none',
  'GET /v1/apps/{app}/machines/{id}/versions': 'versions',
  'GET /v1/apps/{app}/machines/{id}/ps': 'ps',
  'POST /v1/apps/{app}/machines/{id}/exec': 'exec',
  'GET /v1/platform/regions': 'regions',
  'POST /v1/platform/placements': 'placements',
};

/**
 * A body each operation that needs one accepts, so that a 401 or 404 is not hidden behind a 400
 * for the body (validation runs before the app and machine are looked up). A new route that takes
 * a body gets a line here too.
 */
export const sampleBodies: Record<string, unknown> = {
  'POST /v1/apps': { app_name: 'sample' },
  'POST /v1/tokens': { org_slug: 'personal' },
  'POST /v1/apps/{app}/machines': { config: hello },
  'POST /v1/apps/{app}/machines/{id}': { config: hello },
  'POST /v1/apps/{app}/machines/{id}/metadata/{key}': { value: 'v' },
  'POST /v1/apps/{app}/machines/{id}/signal': { signal: 'SIGWINCH' },
  'POST /v1/apps/{app}/machines/{id}/exec': { command: ['true'] },
};

/** A concrete path for an operation's template: `{app}` as given, every other parameter missing. */
export function fillTemplate(template: string, app: string, missing = 'ffffffffffffff'): string {
  return template.replace(/\{(\w+)\}/g, (_, name: string) => (name === 'app' ? app : missing));
}

const ajv = new Ajv({ allErrors: true, strict: true });
const validators = new Map<ShapeName, ValidateFunction>();

/** The problems with `body` as a `name` shape: an empty list when it fits. */
export function shapeProblems(name: ShapeName, body: unknown): string[] {
  let validate = validators.get(name);
  if (!validate) {
    validate = ajv.compile(shapes[name]);
    validators.set(name, validate);
  }
  if (validate(body)) return [];
  return (validate.errors ?? []).map((error) => `${error.instancePath || '/'} ${error.message}`);
}
