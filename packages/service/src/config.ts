import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseListenAddress } from './address.js';
import { UsageError } from './usage-error.js';

export { UsageError };

interface SettingBase {
  description: string;
  /** Required settings have no default; leaving one out is a usage error. */
  required?: boolean;
}

/**
 * A number always has a range (TigerStyle: a limit on everything), checked at start with the
 * defaults, the `--config` file and the flags alike. Whole numbers unless `integer: false`.
 */
export interface NumberSetting extends SettingBase {
  type: 'number';
  default?: number;
  min: number;
  max: number;
  integer?: boolean;
}

/**
 * A string, free or one of `choices`, or of a `format` checked at start like a range: `url` an
 * http(s) URL, `address` a `host:port` (port 0: any free one). A format's setting whose default
 * is the empty string (meaning "none") also takes the empty string.
 */
export interface StringSetting extends SettingBase {
  type: 'string';
  default?: string;
  choices?: readonly string[];
  format?: 'url' | 'address';
}

export interface BooleanSetting extends SettingBase {
  type: 'boolean';
  default?: boolean;
}

/** One configuration setting: a `--flag`, an optional key in the `--config` JSON file, a default. */
export type Setting = NumberSetting | StringSetting | BooleanSetting;

export type Spec = Record<string, Setting>;

type ValueOf<S extends Setting> = S extends { type: 'number' }
  ? number
  : S extends { type: 'boolean' }
    ? boolean
    : S extends { choices: readonly (infer Choice)[] }
      ? Choice
      : string;

export type ConfigOf<S extends Spec> = { [K in keyof S]: ValueOf<S[K]> };

export interface CommandInfo {
  /** Program name shown in the usage line, e.g. `flyd`. */
  name: string;
  summary: string;
}

/** A number's range as `--help` shows it: `0 to 600000`. */
function range(setting: NumberSetting): string {
  return `${setting.min} to ${setting.max}${setting.integer === false ? '' : ', whole'}`;
}

/** The `--help` text: every flag with its description, its range or choices, and its default. */
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
    const kind = setting.type === 'string' ? stringKind(setting) : setting.type;
    const value = setting.type === 'boolean' ? '' : ` <${kind}>`;
    const notes = [
      setting.type === 'number' ? range(setting) : undefined,
      setting.required
        ? 'required'
        : setting.default !== undefined
          ? `default: ${JSON.stringify(setting.default)}`
          : undefined,
    ].filter((note) => note !== undefined);
    const suffix = notes.length > 0 ? ` (${notes.join('; ')})` : '';
    lines.push(`  --${key}${value}`.padEnd(36) + setting.description + suffix);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Reads settings from, in rising priority: defaults, the `--config` JSON file, flags. Every value
 * is checked against its setting's type, range and choices (a UsageError naming the flag).
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
  const got = `got ${JSON.stringify(raw)}`;
  if (setting.type === 'number') {
    const value = typeof raw === 'number' ? raw : Number(raw);
    const whole = setting.integer !== false;
    if (
      typeof raw === 'boolean' ||
      raw === '' ||
      !Number.isFinite(value) ||
      (whole && !Number.isInteger(value)) ||
      value < setting.min ||
      value > setting.max
    ) {
      const kind = whole ? 'a whole number' : 'a number';
      throw new UsageError(
        `--${key} must be ${kind} from ${setting.min} to ${setting.max}, ${got}`,
      );
    }
    return value;
  }
  if (setting.type === 'boolean') {
    if (typeof raw === 'boolean') return raw;
    throw new UsageError(`--${key} must be true or false, ${got}`);
  }
  if (typeof raw !== 'string') throw new UsageError(`--${key} must be a string, ${got}`);
  if (setting.choices && !setting.choices.includes(raw)) {
    throw new UsageError(`--${key} must be one of ${setting.choices.join(', ')}, ${got}`);
  }
  if (setting.format && !(raw === '' && setting.default === '') && !hasFormat(setting, raw)) {
    const words = setting.format === 'url' ? 'an http:// or https:// URL' : 'a host:port address';
    throw new UsageError(`--${key} must be ${words}, ${got}`);
  }
  return raw;
}

/** What `--help` shows as a string's value: its choices, its format, or `string`. */
function stringKind(setting: StringSetting): string {
  if (setting.choices) return setting.choices.join('|');
  if (setting.format === 'address') return 'host:port';
  return setting.format ?? 'string';
}

function hasFormat(setting: StringSetting, raw: string): boolean {
  if (setting.format === 'address') {
    try {
      parseListenAddress(raw);
      return true;
    } catch {
      return false;
    }
  }
  if (!URL.canParse(raw)) return false;
  const url = new URL(raw);
  return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
}
