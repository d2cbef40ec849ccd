/**
 * The response shapes Fly's clients decode, as JSON schemas, documented in `/openapi.json` for
 * every operation (`server.ts` adds them to the generated document; they do not serialize the
 * answers, so no field is dropped). They hold the fields fly-go's types read (`machine_types.go`,
 * `flaps/*.go`), with the types Go's decoder insists on (a string where an int64 is expected
 * fails the whole decode) and the formats Fly documents. Extra fields are allowed: clients ignore
 * them. `test/contract.test.ts` checks every answer against them.
 */
export const patterns = {
  machineId: '^[0-9a-f]{14}$',
  ulid: '^[0-9A-HJKMNP-TV-Z]{26}$',
  rfc3339: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?(Z|[+-]\\d{2}:\\d{2})$',
  leaseNonce: '^[0-9a-f]{12}$',
  tokenId: '^[0-9a-f]{16}$',
  volumeId: '^vol_[0-9a-z]{16}$',
  snapshotId: '^vs_[0-9a-z]{16}$',
} as const;

const string = { type: 'string' };
const integer = { type: 'integer' };
const unsigned = { type: 'integer', minimum: 0 };
const timestamp = { type: 'string', pattern: patterns.rfc3339 };
const ulid = { type: 'string', pattern: patterns.ulid };
/** Every state Fly's Machine shape names. */
export const machineStates = [
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
    // fly-go's HostStatus constants.
    host_status: { enum: ['ok', 'unknown', 'unreachable'] },
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
    volume_count: integer,
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
      required: ['version', 'user_config', 'created_at', 'state'],
      // `state`: a superseded version is `replaced`, the current one its machine's (Fly's
      // version state, docs "Machine states and lifecycle").
      properties: {
        version: ulid,
        user_config: { type: 'object' },
        created_at: timestamp,
        state: { enum: machineStates },
      },
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
  ...volumeShapes(),
  logs: logsShape(),
  ...certificateShapes(),
  ...secretShapes(),
  error: errorShape,
} as const;

export type ShapeName = keyof typeof shapes;

/**
 * A page of Fly's logs API (`/api/v1/apps/{app}/logs`, as flyctl's `logs` polls it): entries with
 * `attributes` (timestamp, message, level, instance, region, meta) and the token for the next page.
 */
function logsShape() {
  const entry = {
    type: 'object',
    required: ['id', 'type', 'attributes'],
    properties: {
      id: string,
      type: { const: 'logs' },
      attributes: {
        type: 'object',
        required: ['timestamp', 'message', 'level', 'instance', 'region', 'meta'],
        properties: {
          timestamp: { type: 'string', pattern: patterns.rfc3339 },
          message: string,
          level: { enum: ['info', 'error'] },
          instance: { type: 'string', pattern: patterns.machineId },
          region: string,
          meta: { type: 'object' },
        },
      },
    },
  };
  return {
    type: 'object',
    required: ['data', 'meta'],
    properties: {
      data: { type: 'array', items: entry },
      meta: { type: 'object', required: ['next_token'], properties: { next_token: string } },
    },
  };
}

/** A hostname of an app and its certificate (a Fleet extension: no Fly client decodes it). */
function certificateShapes() {
  const certificate = {
    type: 'object',
    required: ['hostname', 'app', 'issued'],
    properties: {
      hostname: string,
      app: string,
      issued: { type: 'boolean' },
      not_after: timestamp,
      issuer: string,
      subject_alt_names: string,
      fingerprint_sha256: string,
    },
  };
  return {
    certificate,
    certificates: {
      type: 'object',
      required: ['certificates'],
      properties: { certificates: { type: 'array', items: certificate } },
    },
  };
}

/** An app secret as Fly's `AppSecret` (name, digest, times): never its value. */
function secretShapes() {
  const secret = {
    type: 'object',
    required: ['name', 'digest', 'created_at', 'updated_at'],
    properties: {
      name: string,
      digest: { type: 'string', pattern: '^[0-9a-f]{32}$' },
      created_at: timestamp,
      updated_at: timestamp,
    },
    additionalProperties: false,
  };
  return {
    secrets: {
      type: 'object',
      required: ['secrets'],
      properties: { secrets: { type: 'array', items: secret } },
    },
  };
}

/** The shapes of a Volume and a snapshot, as fly-go's `Volume` and `VolumeSnapshot` decode. */
function volumeShapes() {
  const volume = {
    type: 'object',
    required: [
      ...['id', 'name', 'state', 'size_gb', 'region', 'zone', 'encrypted', 'created_at'],
      ...['blocks', 'block_size', 'blocks_free', 'blocks_avail', 'fstype', 'host_status'],
    ],
    properties: {
      id: { type: 'string', pattern: patterns.volumeId },
      name: string,
      state: string,
      size_gb: { type: 'integer', minimum: 1 },
      region: string,
      zone: string,
      encrypted: { type: 'boolean' },
      attached_machine_id: { type: ['string', 'null'] },
      attached_alloc_id: { type: ['string', 'null'] },
      created_at: timestamp,
      // uint64 in fly-go: a negative or fractional number fails the decode.
      blocks: unsigned,
      block_size: unsigned,
      blocks_free: unsigned,
      blocks_avail: unsigned,
      fstype: string,
      snapshot_retention: integer,
      auto_backup_enabled: { type: 'boolean' },
      host_status: string,
    },
  };
  const snapshot = {
    type: 'object',
    required: ['id', 'size', 'digest', 'created_at', 'status'],
    properties: {
      id: { type: 'string', pattern: patterns.snapshotId },
      size: unsigned,
      digest: string,
      created_at: timestamp,
      status: string,
      retention_days: { type: ['integer', 'null'] },
    },
  };
  return {
    volume,
    volumes: { type: 'array', items: volume },
    extended: {
      type: 'object',
      required: ['needs_restart', 'volume'],
      properties: { needs_restart: { type: 'boolean' }, volume },
    },
    snapshot,
    snapshots: { type: 'array', items: snapshot },
  };
}

/**
 * Every operation of the API with its success status and the shape of its answer. The contract
 * suite calls each one and fails when a route has no line here.
 */
export const operationResponses: Record<string, { status: number; shape: ShapeName }> = {
  'POST /v1/apps': { status: 201, shape: 'app' },
  'GET /v1/apps': { status: 200, shape: 'apps' },
  'GET /v1/apps/{app}': { status: 200, shape: 'app' },
  'DELETE /v1/apps/{app}': { status: 202, shape: 'none' },
  'POST /v1/tokens': { status: 201, shape: 'token' },
  'DELETE /v1/tokens/{id}': { status: 200, shape: 'revoked' },
  'POST /v1/apps/{app}/machines': { status: 200, shape: 'machine' },
  'GET /v1/apps/{app}/machines': { status: 200, shape: 'machines' },
  'GET /v1/apps/{app}/machines/{id}': { status: 200, shape: 'machine' },
  'POST /v1/apps/{app}/machines/{id}': { status: 200, shape: 'machine' },
  'DELETE /v1/apps/{app}/machines/{id}': { status: 200, shape: 'ok' },
  'GET /v1/apps/{app}/machines/{id}/events': { status: 200, shape: 'events' },
  'POST /v1/apps/{app}/machines/{id}/start': { status: 200, shape: 'start' },
  'POST /v1/apps/{app}/machines/{id}/stop': { status: 200, shape: 'ok' },
  'POST /v1/apps/{app}/machines/{id}/restart': { status: 200, shape: 'ok' },
  'POST /v1/apps/{app}/machines/{id}/signal': { status: 200, shape: 'ok' },
  'POST /v1/apps/{app}/machines/{id}/suspend': { status: 200, shape: 'ok' },
  'GET /v1/apps/{app}/machines/{id}/wait': { status: 200, shape: 'wait' },
  'POST /v1/apps/{app}/machines/{id}/cordon': { status: 200, shape: 'ok' },
  'POST /v1/apps/{app}/machines/{id}/uncordon': { status: 200, shape: 'ok' },
  'GET /v1/apps/{app}/machines/{id}/lease': { status: 200, shape: 'lease' },
  'POST /v1/apps/{app}/machines/{id}/lease': { status: 200, shape: 'lease' },
  'DELETE /v1/apps/{app}/machines/{id}/lease': { status: 200, shape: 'ok' },
  'GET /v1/apps/{app}/machines/{id}/metadata': { status: 200, shape: 'metadata' },
  'POST /v1/apps/{app}/machines/{id}/metadata/{key}': { status: 204, shape: 'none' },
  'DELETE /v1/apps/{app}/machines/{id}/metadata/{key}': { status: 204, shape: 'none' },
  'GET /v1/apps/{app}/machines/{id}/versions': { status: 200, shape: 'versions' },
  'GET /v1/apps/{app}/machines/{id}/ps': { status: 200, shape: 'ps' },
  'POST /v1/apps/{app}/machines/{id}/exec': { status: 200, shape: 'exec' },
  'POST /v1/apps/{app}/machines/{id}/migrate': { status: 200, shape: 'machine' },
  'GET /v1/apps/{app}/logs': { status: 200, shape: 'logs' },
  'GET /v1/apps/{app}/certificates': { status: 200, shape: 'certificates' },
  'POST /v1/apps/{app}/certificates': { status: 201, shape: 'certificate' },
  'GET /v1/apps/{app}/certificates/{hostname}': { status: 200, shape: 'certificate' },
  'DELETE /v1/apps/{app}/certificates/{hostname}': { status: 200, shape: 'ok' },
  'GET /v1/apps/{app}/machines/{id}/logs': { status: 200, shape: 'logs' },
  'GET /v1/apps/{app}/secrets': { status: 200, shape: 'secrets' },
  'POST /v1/apps/{app}/secrets': { status: 200, shape: 'secrets' },
  'DELETE /v1/apps/{app}/secrets/{name}': { status: 200, shape: 'ok' },
  'GET /v1/apps/{app}/volumes': { status: 200, shape: 'volumes' },
  'POST /v1/apps/{app}/volumes': { status: 200, shape: 'volume' },
  'GET /v1/apps/{app}/volumes/{id}': { status: 200, shape: 'volume' },
  'PUT /v1/apps/{app}/volumes/{id}': { status: 200, shape: 'volume' },
  'DELETE /v1/apps/{app}/volumes/{id}': { status: 200, shape: 'volume' },
  'PUT /v1/apps/{app}/volumes/{id}/extend': { status: 200, shape: 'extended' },
  'GET /v1/apps/{app}/volumes/{id}/snapshots': { status: 200, shape: 'snapshots' },
  'POST /v1/apps/{app}/volumes/{id}/snapshots': { status: 200, shape: 'snapshot' },
  'GET /v1/platform/regions': { status: 200, shape: 'regions' },
  'POST /v1/platform/placements': { status: 200, shape: 'placements' },
};

/** The OpenAPI responses of an operation (`GET /v1/apps/:app`): its success, and Fly's error body. */
export function documentedResponses(
  method: string,
  url: string,
): Record<string, unknown> | undefined {
  const operation = `${method} ${url.replace(/:(\w+)/g, '{$1}')}`;
  const documented = operationResponses[operation];
  if (!documented) return undefined;
  return {
    [documented.status]: shapes[documented.shape],
    '4XX': { description: "Fly's error body", ...errorShape },
    '5XX': { description: "Fly's error body", ...errorShape },
  };
}
