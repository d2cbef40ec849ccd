/**
 * The building blocks of the schema: JSON Schema nodes for the strings, numbers and maps the
 * machine config is made of. Each node that a plain type and range cannot describe carries
 * `x-rule`, the rule in words; the validator says "<field> must be <x-rule>".
 */

/** A JSON Schema node (draft 2020-12 / OpenAPI 3.1, the subset this package writes). */
export type SchemaNode = { readonly [keyword: string]: unknown };

/** No NUL byte: the kernel cannot take one in an argument, a variable or a path. */
const noNul = '^[^\\u0000]*$';

/** A string without NUL bytes, at most `maxLength` characters. */
export function text(maxLength: number, extra: SchemaNode = {}): SchemaNode {
  return {
    type: 'string',
    maxLength,
    pattern: noNul,
    'x-rule': `a string of at most ${maxLength} characters without NUL bytes`,
    ...extra,
  };
}

/** A string of the form `pattern`, said in words by `rule`. */
export function matching(pattern: string, rule: string): SchemaNode {
  return { type: 'string', pattern, 'x-rule': rule };
}

/** A whole number in `[minimum, maximum]`. */
export function integer(minimum: number, maximum: number, extra: SchemaNode = {}): SchemaNode {
  return { type: 'integer', minimum, maximum, ...extra };
}

/** A TCP/UDP port. */
export const port = integer(1, 65_535);

/** A list of arguments (a command line): at least `minItems` strings without NUL bytes. */
export function argv(minItems: number): SchemaNode {
  return { type: 'array', minItems, maxItems: 256, items: text(65_536) };
}

/**
 * A Go duration (what fly-go's `Duration` marshals to: `10s`, `1m30s`, `500ms`) or a number of
 * seconds.
 */
export function duration(maximumSeconds: number): SchemaNode {
  return {
    type: ['string', 'number'],
    minimum: 0,
    maximum: maximumSeconds,
    maxLength: 64,
    pattern: '^(?:0|(?:\\d+(?:\\.\\d+)?(?:ns|us|µs|ms|s|m|h))+)$',
    'x-rule': `a duration like "10s" or "1m30s", or a number of seconds up to ${maximumSeconds}`,
  };
}

/** An absolute path of segments, none of them `.` or `..`, without NUL bytes. */
const segments = '(?:/(?!\\.\\.?(?:/|$))[^/\\u0000]+)+';

/** Where a file goes in the machine: absolute, not a folder (no trailing slash), no `..`. */
export const filePath: SchemaNode = {
  type: 'string',
  maxLength: 4096,
  pattern: `^${segments}$`,
  'x-rule': 'an absolute file path like /etc/app.conf (no trailing slash, no "." or ".." segment)',
};

/** A folder in the machine (a mount point): absolute, not `/` itself, no `..`. */
export const folderPath: SchemaNode = {
  type: 'string',
  maxLength: 4096,
  pattern: `^${segments}/?$`,
  'x-rule': 'an absolute folder path like /data (not /, no "." or ".." segment)',
};

/** A map of names to values, at most `maxProperties` of them. */
export function map(names: SchemaNode, values: SchemaNode, maxProperties: number): SchemaNode {
  return {
    type: 'object',
    maxProperties,
    propertyNames: names,
    additionalProperties: values,
  };
}

/** An object with these properties; any other property is kept as it is (see README). */
export function object(properties: Record<string, SchemaNode>, extra: SchemaNode = {}): SchemaNode {
  return { type: 'object', properties, ...extra };
}
