import { corroError } from './errors.js';

/** A statement in one of Corrosion's four forms, reduced to SQL and bindings. */
export interface BoundStatement {
  sql: string;
  /** Positional parameters, or named ones (keys without the `:`/`@`/`$` sigil). */
  params: unknown[] | Record<string, unknown>;
}

/**
 * Accepts `"SQL"`, `["SQL", [params]]`, `{"query", "params"}` or `{"query", "named_params"}`;
 * anything else is a 400 naming what was wrong, with the statement's position `at`.
 */
export function bindStatement(input: unknown, at = 0): BoundStatement {
  const where = `statement ${at}`;
  if (typeof input === 'string') return { sql: nonEmpty(input, where), params: [] };
  if (Array.isArray(input)) {
    const [sql, params, ...rest] = input as unknown[];
    if (
      typeof sql !== 'string' ||
      rest.length > 0 ||
      (params !== undefined && !Array.isArray(params))
    ) {
      throw corroError('CORRO_ERR_BAD_STATEMENT', `${where}: expected ["SQL", [params]]`);
    }
    return { sql: nonEmpty(sql, where), params: (params as unknown[] | undefined) ?? [] };
  }
  if (typeof input === 'object' && input !== null) {
    const { query, params, named_params: named, ...rest } = input as Record<string, unknown>;
    if (typeof query !== 'string')
      throw corroError('CORRO_ERR_BAD_STATEMENT', `${where}: "query" must be SQL text`);
    const extra = Object.keys(rest);
    if (extra.length > 0)
      throw corroError('CORRO_ERR_BAD_STATEMENT', `${where}: unknown field "${extra[0]}"`);
    if (params !== undefined && named !== undefined) {
      throw corroError(
        'CORRO_ERR_BAD_STATEMENT',
        `${where}: give "params" or "named_params", not both`,
      );
    }
    if (named !== undefined) {
      if (typeof named !== 'object' || named === null || Array.isArray(named)) {
        throw corroError('CORRO_ERR_BAD_STATEMENT', `${where}: "named_params" must be an object`);
      }
      return { sql: nonEmpty(query, where), params: stripSigils(named as Record<string, unknown>) };
    }
    if (params !== undefined && !Array.isArray(params)) {
      throw corroError('CORRO_ERR_BAD_STATEMENT', `${where}: "params" must be an array`);
    }
    return { sql: nonEmpty(query, where), params: (params as unknown[] | undefined) ?? [] };
  }
  throw corroError(
    'CORRO_ERR_BAD_STATEMENT',
    `${where}: expected SQL text, [sql, params] or {query}`,
  );
}

function nonEmpty(sql: string, where: string): string {
  if (sql.trim() === '') throw corroError('CORRO_ERR_BAD_STATEMENT', `${where}: empty SQL`);
  return sql;
}

function stripSigils(named: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(named).map(([key, value]) => [key.replace(/^[:@$]/, ''), value]),
  );
}

/** JSON cannot carry SQLite blobs or bigints as such; bindings take JSON scalars only. */
export function bindable(params: BoundStatement['params']): unknown[] | Record<string, unknown> {
  const check = (value: unknown) => {
    if (value !== null && typeof value === 'object') {
      throw corroError(
        'CORRO_ERR_BAD_STATEMENT',
        'parameters must be strings, numbers, booleans or null',
      );
    }
    return typeof value === 'boolean' ? Number(value) : value;
  };
  if (Array.isArray(params)) return params.map(check);
  return Object.fromEntries(Object.entries(params).map(([key, value]) => [key, check(value)]));
}
