import { readFileSync } from 'node:fs';
import { Ajv, type ErrorObject } from 'ajv';
import { parse, TomlError } from 'smol-toml';
import { CliError, exitCodes } from '../errors.js';
import { lineOf } from './locate.js';
import { flyTomlSchema } from './schema.js';
import type { FlyToml } from './types.js';

// verbose: errors carry their schema, whose `x-rule` says the rule in words.
const ajv = new Ajv({ allErrors: true, verbose: true, allowUnionTypes: true });
ajv.addKeyword({ keyword: 'x-rule' });
const validate = ajv.compile(flyTomlSchema);

export interface ReadFlyToml {
  config: FlyToml;
  /** Keys Fleet does not know, with their lines: ignored, said once. */
  warnings: string[];
}

/**
 * Reads and checks a fly.toml. A key of the wrong type or value fails with a message naming the
 * key and its line (exit 2); an unknown key is a warning.
 */
export function readFlyToml(file: string): ReadFlyToml {
  let source: string;
  try {
    source = readFileSync(file, 'utf8');
  } catch (error) {
    throw new CliError(`cannot read ${file}: ${(error as Error).message}`, exitCodes.usage);
  }
  return checkFlyToml(source, file);
}

export function checkFlyToml(source: string, file: string): ReadFlyToml {
  let parsed: unknown;
  try {
    parsed = parse(source);
  } catch (error) {
    const where = error instanceof TomlError ? ` (line ${error.line})` : '';
    throw new CliError(
      `${file} is not valid TOML${where}: ${(error as Error).message.split('\n')[0]}`,
      exitCodes.usage,
    );
  }
  const warnings: { line: number; text: string }[] = [];
  const problems: { line: number; text: string }[] = [];
  if (!validate(parsed)) {
    for (const error of validate.errors ?? []) {
      const path = pathOf(error);
      const line = lineOf(source, path);
      const at = `${file}${line === undefined ? '' : `:${line}`}`;
      if (error.keyword === 'additionalProperties') {
        const key = [...path].join('.');
        warnings.push({ line: line ?? 0, text: `${at}: unknown key ${key} (ignored)` });
      } else problems.push({ line: line ?? 0, text: `${at}: ${describe(error, path)}` });
    }
  }
  // In the file's order, as a person reads it.
  const inOrder = (list: { line: number; text: string }[]) =>
    list.sort((a, b) => a.line - b.line).map((entry) => entry.text);
  if (problems.length > 0) throw new CliError(inOrder(problems).join('\n'), exitCodes.usage);
  return { config: parsed as FlyToml, warnings: inOrder(warnings) };
}

/** The path of the key an error is about (for an unknown key, that key). */
function pathOf(error: ErrorObject): (string | number)[] {
  const path = error.instancePath
    .split('/')
    .slice(1)
    .map((part) =>
      /^\d+$/.test(part) ? Number(part) : part.replace(/~1/g, '/').replace(/~0/g, '~'),
    );
  if (error.keyword === 'additionalProperties')
    path.push((error.params as { additionalProperty: string }).additionalProperty);
  if (error.keyword === 'required')
    path.push((error.params as { missingProperty: string }).missingProperty);
  return path;
}

function describe(error: ErrorObject, path: (string | number)[]): string {
  const key = path
    .map((part) => (typeof part === 'number' ? `[${part}]` : part))
    .join('.')
    .replace(/\.\[/g, '[');
  const rule = (error.parentSchema as { 'x-rule'?: string } | undefined)?.['x-rule'];
  if (error.keyword === 'required') return `${key} is required`;
  if (rule) return `${key} must be ${rule}`;
  if (error.keyword === 'enum')
    return `${key} must be one of ${(error.params as { allowedValues: unknown[] }).allowedValues.map((value) => JSON.stringify(value)).join(', ')}`;
  return `${key} ${error.message}`;
}
