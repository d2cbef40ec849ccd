import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

/** One configuration setting: a `--flag`, an optional key in the `--config` JSON file, a default. */
export interface Setting {
  type: 'string' | 'number' | 'boolean';
  description: string;
  default?: string | number | boolean;
  /** Required settings have no default; leaving one out is a usage error. */
  required?: boolean;
}

export type Spec = Record<string, Setting>;

type ValueOf<S extends Setting> = S['type'] extends 'number'
  ? number
  : S['type'] extends 'boolean'
    ? boolean
    : string;

export type ConfigOf<S extends Spec> = { [K in keyof S]: ValueOf<S[K]> };

/** A bad flag, value or config file: the caller prints the message and exits with status 2. */
export class UsageError extends Error {
  readonly code = 'USAGE_ERR';
}

export interface CommandInfo {
  /** Program name shown in the usage line, e.g. `flyd`. */
  name: string;
  summary: string;
}

/** The `--help` text: every flag with its description and default. */
export function usage(info: CommandInfo, spec: Spec): string {
  const lines = [
    `Usage: ${info.name} [--config file.json] [flags]`,
    '',
    info.summary,
    '',
    'Flags:',
  ];
  const all: Spec = {
    config: { type: 'string', description: 'JSON file of settings (keys as the flag names)' },
    ...spec,
    help: { type: 'boolean', description: 'print this help and exit' },
  };
  for (const [key, setting] of Object.entries(all)) {
    const value = setting.type === 'boolean' ? '' : ` <${setting.type}>`;
    const fallback = setting.required
      ? ' (required)'
      : setting.default !== undefined
        ? ` (default: ${JSON.stringify(setting.default)})`
        : '';
    lines.push(`  --${key}${value}`.padEnd(36) + setting.description + fallback);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Reads settings from, in rising priority: defaults, the `--config` JSON file, flags.
 * Returns `undefined` when `--help` was asked (the help text is already printed).
 */
export function parseConfig<S extends Spec>(
  info: CommandInfo,
  spec: S,
  argv: string[] = process.argv.slice(2),
): ConfigOf<S> | undefined {
  const options: Record<string, { type: 'string' | 'boolean' }> = {
    config: { type: 'string' },
    help: { type: 'boolean' },
  };
  for (const [key, setting] of Object.entries(spec)) {
    options[key] = { type: setting.type === 'boolean' ? 'boolean' : 'string' };
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: false, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const flags = parsed.values as Record<string, string | boolean | undefined>;
  if (flags.help) {
    process.stdout.write(usage(info, spec));
    return undefined;
  }
  const fromFile = typeof flags.config === 'string' ? readConfigFile(flags.config, spec) : {};
  const config: Record<string, string | number | boolean> = {};
  for (const [key, setting] of Object.entries(spec)) {
    const raw = flags[key] ?? fromFile[key] ?? setting.default;
    if (raw === undefined) {
      if (setting.required) throw new UsageError(`missing required setting --${key}`);
      continue;
    }
    config[key] = coerce(key, setting, raw);
  }
  return config as ConfigOf<S>;
}

function readConfigFile(path: string, spec: Spec): Record<string, unknown> {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new UsageError(`cannot read config file ${path}: ${(error as Error).message}`);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new UsageError(`config file ${path} must hold a JSON object`);
  }
  for (const key of Object.keys(data)) {
    if (!(key in spec)) throw new UsageError(`config file ${path}: unknown setting "${key}"`);
  }
  return data as Record<string, unknown>;
}

function coerce(key: string, setting: Setting, raw: unknown): string | number | boolean {
  if (setting.type === 'number') {
    const value = typeof raw === 'number' ? raw : Number(raw);
    if (typeof raw === 'boolean' || raw === '' || !Number.isFinite(value)) {
      throw new UsageError(`--${key} must be a number, got ${JSON.stringify(raw)}`);
    }
    return value;
  }
  if (setting.type === 'boolean') {
    if (typeof raw === 'boolean') return raw;
    throw new UsageError(`--${key} must be true or false, got ${JSON.stringify(raw)}`);
  }
  if (typeof raw !== 'string') {
    throw new UsageError(`--${key} must be a string, got ${JSON.stringify(raw)}`);
  }
  return raw;
}
