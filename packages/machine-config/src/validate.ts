import assert from 'node:assert/strict';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { type ConfigProblem, MachineConfigError } from './errors.js';
import type { SchemaNode } from './rules.js';
import { machineConfigSchema } from './schema.js';

/**
 * One validator for every schema of this package and the request bodies that embed them. It
 * stops at the first problem (a request gets one clear message, and a hostile body cannot make
 * it collect thousands), converts nothing, fills in nothing and removes nothing: what passes is
 * stored exactly as it was sent.
 */
const ajv = new Ajv({
  allErrors: false,
  verbose: true,
  strict: true,
  allowUnionTypes: true,
  coerceTypes: false,
  useDefaults: false,
  removeAdditional: false,
  // A referenced schema (the machine config, see configKey) is one shared function, not copied
  // into every schema that refers to it.
  inlineRefs: false,
});
// The rule in words, for messages and the OpenAPI document; an annotation, not a check.
ajv.addKeyword({ keyword: 'x-rule', schemaType: 'string' });

/**
 * The machine config is compiled once per process, under this key, and the body schemas that
 * embed it refer to it: compiling it costs a few hundred ms of CPU, and every flyd and flaps
 * has several routes that take a config (a fleet test starts ten flyds at once).
 */
const configKey = 'fleet-machine-config';
ajv.addSchema(machineConfigSchema as object, configKey);

/** `schema` with each embedded machine config replaced by a reference to the one compiled copy. */
function referencingConfig(node: unknown): unknown {
  if (node === machineConfigSchema) return { $ref: configKey };
  if (Array.isArray(node)) return node.map(referencingConfig);
  if (node === null || typeof node !== 'object') return node;
  return Object.fromEntries(
    Object.entries(node).map(([key, value]) => [key, referencingConfig(value)]),
  );
}

/** A check of `data` against a compiled schema: the first problem, or undefined. */
export type Check = (data: unknown, root?: string) => ConfigProblem | undefined;

/** The machine config's own validator, added under configKey when this module loads. */
function configValidator(): ValidateFunction {
  const validate = ajv.getSchema(configKey);
  assert.ok(validate, 'the machine config schema is added to ajv when this module loads');
  return validate;
}

/**
 * Compiles `schema`, on its first use (a server's start stays fast); each problem names its
 * field as a path below `root` (`config.env.PATH`).
 */
export function compileCheck(schema: SchemaNode, root = ''): Check {
  let validate: ValidateFunction | undefined;
  return (data, at = root) => {
    validate ??=
      schema === machineConfigSchema
        ? configValidator()
        : ajv.compile(referencingConfig(schema) as SchemaNode);
    if (validate(data)) return undefined;
    const error = validate.errors?.[0];
    if (!error) return { field: at || 'body', message: `${at || 'body'} is invalid` };
    return describe(error, data, at);
  };
}

const configCheck = compileCheck(machineConfigSchema);

/**
 * Throws MachineConfigError naming the field unless `config` is a valid machine config; `root`
 * is what the config is called in the message (`config`, or `body.config`).
 */
export function checkMachineConfig(config: unknown, root = 'config'): void {
  const problem = configCheck(config, root);
  if (problem) throw new MachineConfigError(problem);
}

/**
 * A fastify `validatorCompiler` for a route whose schema embeds the machine config: the same
 * validator and messages at every API edge (flaps and flyd), each edge turning a problem into its
 * own error (Fly's shape at flaps, Fleet's at flyd).
 */
export function bodyValidatorCompiler(toError: (problem: ConfigProblem) => Error) {
  return ({ schema }: { schema: unknown }) => {
    const check = compileCheck(schema as SchemaNode);
    return (data: unknown): { error: Error } | { value: unknown } => {
      const problem = check(data);
      return problem ? { error: toError(problem) } : { value: data };
    };
  };
}

/** The problem an ajv error stands for, as one sentence naming the field. */
function describe(error: ErrorObject, data: unknown, root: string): ConfigProblem {
  const path = fieldOf(error.instancePath, data, root);
  const field = path || 'body';
  const node = (error.parentSchema ?? {}) as SchemaNode;
  const name = (error as ErrorObject & { propertyName?: string }).propertyName;
  if (name !== undefined) {
    return { field, message: `${field} name ${quote(name)} must be ${phrase(node)}` };
  }
  if (error.keyword === 'required') {
    const missing = joinField(path, String(error.params.missingProperty), false);
    return { field: missing, message: `${missing} is required` };
  }
  if (error.keyword === 'additionalProperties') {
    const extra = joinField(path, String(error.params.additionalProperty), false);
    return { field: extra, message: `${extra} is not a field of ${field}` };
  }
  if (error.keyword === 'uniqueItems') {
    return {
      field,
      message: `${field} must not repeat an item (items ${error.params.j} and ${error.params.i})`,
    };
  }
  return { field, message: `${field} must be ${phrase(node)}` };
}

/** `/config/services/0/ports` as `config.services[0].ports`, arrays told by the data itself. */
function fieldOf(instancePath: string, data: unknown, root: string): string {
  let field = root;
  let at: unknown = data;
  for (const raw of instancePath.split('/').slice(1)) {
    const segment = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    field = joinField(field, segment, Array.isArray(at));
    at =
      at !== null && typeof at === 'object' ? (at as Record<string, unknown>)[segment] : undefined;
  }
  return field;
}

function joinField(field: string, segment: string, index: boolean): string {
  if (index) return `${field}[${segment}]`;
  if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(segment)) return field ? `${field}.${segment}` : segment;
  return `${field || 'body'}[${quote(segment)}]`;
}

/** A name as JSON, cut at 64 characters (names only: values, like env values, are never shown). */
function quote(text: string): string {
  return JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}…` : text);
}

const typeWords: Record<string, string> = {
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'true or false',
  object: 'an object',
  array: 'a list',
  null: 'null',
};

/** What a schema node accepts, in words: its `x-rule`, else from its type, range and enum. */
export function phrase(node: SchemaNode): string {
  if (typeof node['x-rule'] === 'string') return node['x-rule'];
  if (Array.isArray(node.enum))
    return `one of ${node.enum.map((value) => JSON.stringify(value)).join(', ')}`;
  if (node.const !== undefined) return JSON.stringify(node.const);
  const words = [node.type ?? 'any']
    .flat()
    .map((type) => `${typeWords[String(type)] ?? String(type)}${limits(node, String(type))}`);
  return words.join(' or ');
}

/** The bounds of one type of a node: `>= 256 and <= 2048, a multiple of 256`. */
function limits(node: SchemaNode, type: string): string {
  const parts: string[] = [];
  const bound = (keyword: string, word: string) => {
    if (typeof node[keyword] === 'number') parts.push(`${word} ${node[keyword]}`);
  };
  if (type === 'integer' || type === 'number') {
    bound('minimum', '>=');
    bound('maximum', '<=');
    const range = parts.splice(0).join(' and ');
    if (range) parts.push(range);
    if (typeof node.multipleOf === 'number') parts.push(`a multiple of ${node.multipleOf}`);
    return parts.length > 0 ? ` ${parts.join(', ')}` : '';
  }
  const unit = type === 'string' ? 'characters' : type === 'array' ? 'items' : 'entries';
  const [min, max] =
    type === 'string'
      ? [node.minLength, node.maxLength]
      : type === 'array'
        ? [node.minItems, node.maxItems]
        : type === 'object'
          ? [node.minProperties, node.maxProperties]
          : [undefined, undefined];
  if (typeof min === 'number' && min > 0) parts.push(`at least ${min}`);
  if (typeof max === 'number') parts.push(`at most ${max}`);
  return parts.length > 0 ? ` of ${parts.join(' and ')} ${unit}` : '';
}
