import { Ajv, type ValidateFunction } from 'ajv';
import { type ShapeName, shapes } from '../src/fly-shapes.js';
import { hello } from './fleet.js';

export { operationResponses, patterns } from '../src/fly-shapes.js';

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
  'POST /v1/apps/{app}/volumes': { name: 'data', region: 'ams', size_gb: 1 },
  'PUT /v1/apps/{app}/volumes/{id}': { snapshot_retention: 5 },
  'PUT /v1/apps/{app}/volumes/{id}/extend': { size_gb: 2 },
  'POST /v1/apps/{app}/certificates': { hostname: 'sample.example.com' },
  'POST /v1/apps/{app}/secrets': { values: { SAMPLE: 'v' } },
};

/**
 * A concrete path for an operation's template: `{app}` as given, a machine id as given (by
 * default one of nothing), and a volume id of nothing in Fly's `vol_` form, so the route's
 * pattern lets it through.
 */
export function fillTemplate(template: string, app: string, machineId = 'ffffffffffffff'): string {
  const missing = template.includes('/volumes/')
    ? 'vol_0000000000000000'
    : template.includes('/certificates/')
      ? 'missing.example.com'
      : machineId;
  return template.replace(/\{(\w+)\}/g, (_, name: string) => (name === 'app' ? app : missing));
}

const ajv = new Ajv({ allErrors: true, strict: true });
const validators = new Map<unknown, ValidateFunction>();

const problemsOf = (schema: object, body: unknown) => {
  let validate = validators.get(schema);
  if (!validate) {
    validate = ajv.compile(schema);
    validators.set(schema, validate);
  }
  if (validate(body)) return [];
  return (validate.errors ?? []).map((error) => `${error.instancePath || '/'} ${error.message}`);
};

/** The problems with `body` as a `name` shape: an empty list when it fits. */
export function shapeProblems(name: ShapeName, body: unknown): string[] {
  return problemsOf(shapes[name], body);
}

export interface OpenApiDocument {
  paths: Record<
    string,
    Record<
      string,
      { responses: Record<string, { content?: { 'application/json'?: { schema: object } } }> }
    >
  >;
}

/** The operations of the document, as `METHOD /template`. */
export function operationsOf(document: OpenApiDocument): string[] {
  return Object.entries(document.paths).flatMap(([path, methods]) =>
    Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`),
  );
}

/**
 * The problems with an answer against the response the document declares for the operation
 * and status: no declared response is a problem, and a response without content means no body.
 */
export function documentedProblems(
  document: OpenApiDocument,
  operation: string,
  status: number | string,
  body: unknown,
): string[] {
  const [method, path] = operation.split(' ') as [string, string];
  const response = document.paths[path]?.[method.toLowerCase()]?.responses[String(status)];
  if (!response) return [`${operation} declares no ${status} response`];
  const schema = response.content?.['application/json']?.schema;
  if (!schema) return body === null ? [] : [`${operation} ${status} declares no body`];
  // The document's annotations (description...) are not validation keywords.
  const { description: _description, ...validated } = schema as { description?: string };
  return problemsOf(validated, body);
}
