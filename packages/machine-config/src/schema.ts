import { guestSchema } from './guest.js';
import {
  argv,
  duration,
  filePath,
  folderPath,
  integer,
  map,
  matching,
  object,
  type SchemaNode,
  text,
} from './rules.js';
import { checksSchema, serviceSchema } from './services.js';

/** The signals Fly lets a `stop_config` name (flyctl's list), each also without `SIG`. */
export const stopSignals = [
  'SIGABRT',
  'SIGALRM',
  'SIGFPE',
  'SIGHUP',
  'SIGILL',
  'SIGINT',
  'SIGKILL',
  'SIGPIPE',
  'SIGQUIT',
  'SIGSEGV',
  'SIGTERM',
  'SIGTRAP',
  'SIGUSR1',
  'SIGUSR2',
] as const;

/** Their numbers on Linux, which a stop_config may give instead of a name. */
const stopSignalNumbers = [6, 14, 8, 1, 4, 2, 9, 13, 3, 11, 15, 5, 10, 12];

export const restartPolicies = ['no', 'always', 'on-failure'] as const;
export const schedules = ['hourly', 'daily', 'weekly', 'monthly'] as const;

/** The longest grace period a stop may have (flyd's stop API has the same bound). */
export const stopTimeoutSecondsMax = 600;

/** Fly's app names: lowercase letters, digits and dashes, at most 63, no dash at either end. */
export const appNamePattern = '^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$';

/** An app's name wherever one is given: flaps' apps, flyd's machines and volumes, fly.toml. */
export const appNameSchema = matching(
  appNamePattern,
  'an app name of at most 63 lowercase letters, digits and dashes, not starting or ending with a dash',
);

/** A volume's id, as Fly's: `vol_` and 16 lowercase letters and digits. */
export const volumeIdSchema = matching(
  '^vol_[0-9a-z]{16}$',
  'a volume id like vol_0123456789abcdef',
);

/** A volume snapshot's id: `vs_` and 16 lowercase letters and digits. */
export const snapshotIdSchema = matching(
  '^vs_[0-9a-z]{16}$',
  'a snapshot id like vs_0123456789abcdef',
);

/** A volume's name, as Fly's: lowercase letters, digits and underscores, at most 30. */
export const volumeNameSchema = matching(
  '^[a-z0-9_]{1,30}$',
  'a volume name of 1 to 30 lowercase letters, digits and underscores',
);

/** Fly's machine names: a letter or digit, then letters, digits, `-` and `_`; at most 63. */
export const machineNameSchema: SchemaNode = {
  type: 'string',
  minLength: 1,
  maxLength: 63,
  pattern: '^[A-Za-z0-9][A-Za-z0-9_-]*$',
  'x-rule':
    'a name of at most 63 letters, digits, "-" and "_", starting with a letter or digit (no "/", spaces, newlines or shell characters)',
};

/** A variable name: anything the kernel takes, which is no `=` and no NUL. */
const envName: SchemaNode = {
  type: 'string',
  minLength: 1,
  maxLength: 256,
  pattern: '^[^=\\u0000]+$',
  'x-rule': 'a variable name without "=" or NUL bytes (at most 256 characters)',
};

const metadataKey: SchemaNode = {
  type: 'string',
  minLength: 1,
  maxLength: 64,
  pattern: '^[A-Za-z0-9_.-]+$',
  'x-rule': 'a key of letters, digits, "_", "." and "-" (at most 64)',
};

const fileSchema: SchemaNode = object(
  {
    guest_path: filePath,
    raw_value: {
      type: 'string',
      // 1 MiB of content, base64.
      maxLength: 1_398_104,
      pattern: '^[A-Za-z0-9+/]*={0,2}$',
      'x-rule': 'base64 of at most 1 MiB',
    },
    secret_name: text(256),
    image_config: text(256),
    mode: integer(0, 0o7777, { 'x-rule': 'a file mode from 0 to 4095 (0o7777), like 420 (0o644)' }),
  },
  { required: ['guest_path'] },
);

const mountSchema: SchemaNode = object(
  {
    volume: volumeIdSchema,
    path: folderPath,
    name: text(64),
    size_gb: integer(1, 500),
    encrypted: { type: 'boolean' },
    extend_threshold_percent: integer(0, 100),
    add_size_gb: integer(0, 500),
    size_gb_limit: integer(0, 500),
  },
  { required: ['volume', 'path'] },
);

/**
 * Fly's machine config (fly-go's `MachineConfig`), the fields Fleet knows with Fly's types and
 * limits. Fields it does not know are kept as they are and ignored (see README: fly-go decodes
 * into structs and drops unknown fields; Fleet keeps them so a newer client's config comes back
 * whole).
 */
export const machineConfigSchema: SchemaNode = object(
  {
    image: {
      type: 'string',
      minLength: 1,
      maxLength: 512,
      pattern: '^[A-Za-z0-9][A-Za-z0-9._/:@+-]*$',
      'x-rule': 'an image reference like hello or registry.example/app:1.2 (no spaces)',
    },
    init: object({
      exec: argv(1),
      entrypoint: argv(0),
      cmd: argv(0),
      tty: { type: 'boolean' },
      swap_size_mb: integer(0, 65_536),
      kernel_args: argv(0),
    }),
    env: map(envName, text(65_536), 1_024),
    guest: guestSchema,
    metadata: map(metadataKey, text(4_096), 256),
    services: { type: 'array', maxItems: 64, items: serviceSchema },
    checks: checksSchema,
    mounts: {
      type: 'array',
      maxItems: 1,
      items: mountSchema,
      'x-rule': 'a list of at most one mount (a machine mounts one volume)',
    },
    files: { type: 'array', maxItems: 256, items: fileSchema },
    rootfs: object({
      size_gb: integer(1, 500),
      persist: {
        type: 'string',
        enum: ['never'],
        'x-rule':
          'never (the root is made afresh at every start; restart and always are not supported)',
      },
    }),
    restart: object({
      policy: { type: 'string', enum: restartPolicies },
      max_retries: integer(0, 1_000),
      gpu_bid_price: { type: 'number', minimum: 0 },
    }),
    stop_config: object({
      signal: {
        type: ['string', 'integer'],
        enum: [...stopSignals, ...stopSignals.map((name) => name.slice(3)), ...stopSignalNumbers],
        'x-rule': `a signal like SIGINT, INT or 2 (${stopSignals.join(', ')})`,
      },
      timeout: duration(stopTimeoutSecondsMax),
    }),
    auto_destroy: { type: 'boolean' },
    schedule: { type: 'string', enum: schedules },
    disable_machine_autostart: { type: ['boolean', 'null'] },
    standbys: {
      type: 'array',
      maxItems: 16,
      items: {
        type: 'string',
        pattern: '^[0-9a-f]{14}$',
        'x-rule': 'a machine id (14 hex digits)',
      },
    },
  },
  { required: ['image'] },
);
