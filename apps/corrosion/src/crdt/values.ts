import type { SqlValue } from './pack.js';

function rank(value: SqlValue): number {
  if (value === null) return 0;
  if (typeof value === 'number' || typeof value === 'bigint') return 1;
  if (typeof value === 'string') return 2;
  return 3;
}

/**
 * Compares two values in SQLite's type order (NULL < numbers < text < blob; text by its UTF-8
 * bytes, as the BINARY collation does): the merge's tie-break when column versions are equal.
 */
export function compareValues(a: SqlValue, b: SqlValue): number {
  const byRank = rank(a) - rank(b);
  if (byRank !== 0) return Math.sign(byRank);
  if (a === null) return 0;
  if (typeof a === 'number' || typeof a === 'bigint') {
    const x = a as number | bigint;
    const y = b as number | bigint;
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (typeof a === 'string') return Buffer.compare(Buffer.from(a), Buffer.from(b as string));
  return Buffer.compare(a, b as Uint8Array);
}

/**
 * A row's values for JSON: a blob as an array of its bytes, as Corrosion's untagged
 * `SqliteValue` has it (not Node's `{"type":"Buffer","data":[…]}`), and an integer past 2^53
 * (a bigint, which JSON.stringify refuses) as the string of its digits.
 */
export function jsonValues(values: readonly unknown[]): unknown[] {
  return values.map((value) =>
    value instanceof Uint8Array
      ? Array.from(value)
      : typeof value === 'bigint'
        ? value.toString()
        : value,
  );
}

/** better-sqlite3 binds Buffers, not other Uint8Arrays. */
export function bindable(value: SqlValue): SqlValue {
  return value instanceof Uint8Array && !Buffer.isBuffer(value) ? Buffer.from(value) : value;
}
