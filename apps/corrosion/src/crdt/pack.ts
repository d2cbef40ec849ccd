/** A SQLite value as better-sqlite3 hands it over. */
export type SqlValue = null | number | bigint | string | Uint8Array;

// cr-sqlite's column types (SQLite's fundamental datatype codes).
const INTEGER = 1;
const FLOAT = 2;
const TEXT = 3;
const BLOB = 4;
const NULL = 5;

/**
 * Packs primary-key values in cr-sqlite's format (`crsql_pack_columns`): a column count byte,
 * then per value a type byte whose low 3 bits are the type and high 5 bits the byte length of
 * the integer that follows (the value for integers, the length for text and blobs), big-endian
 * and as short as possible; floats are 8 bytes big-endian.
 */
export function packColumns(values: readonly SqlValue[]): Buffer {
  if (values.length > 255) throw new RangeError('at most 255 columns can be packed');
  const parts: Buffer[] = [Buffer.of(values.length)];
  for (const value of values) {
    if (value === null) parts.push(Buffer.of(NULL));
    else if (typeof value === 'number' && !Number.isInteger(value)) {
      const buf = Buffer.alloc(9);
      buf[0] = FLOAT;
      buf.writeDoubleBE(value, 1);
      parts.push(buf);
    } else if (typeof value === 'number' || typeof value === 'bigint') {
      parts.push(packInt(INTEGER, BigInt(value)));
    } else {
      const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value);
      parts.push(packInt(typeof value === 'string' ? TEXT : BLOB, BigInt(bytes.length)), bytes);
    }
  }
  return Buffer.concat(parts);
}

function packInt(type: number, value: bigint): Buffer {
  const width = bytesNeeded(value);
  const buf = Buffer.alloc(1 + width);
  buf[0] = (width << 3) | type;
  let rest = BigInt.asUintN(64, value);
  for (let at = width; at >= 1; at--) {
    buf[at] = Number(rest & 0xffn);
    rest >>= 8n;
  }
  return buf;
}

/** cr-sqlite's rule: the fewest bytes whose span covers the highest non-zero byte. */
function bytesNeeded(value: bigint): number {
  let unsigned = BigInt.asUintN(64, value);
  let width = 0;
  while (unsigned !== 0n) {
    width++;
    unsigned >>= 8n;
  }
  return width;
}

export function unpackColumns(packed: Uint8Array): SqlValue[] {
  const buf = Buffer.from(packed.buffer, packed.byteOffset, packed.byteLength);
  const fail = (why: string): never => {
    throw new RangeError(`packed columns: ${why}`);
  };
  if (buf.length === 0) fail('empty');
  const values: SqlValue[] = [];
  let at = 1;
  for (let column = 0; column < buf[0]!; column++) {
    if (at >= buf.length) fail('truncated');
    const typeByte = buf[at++]!;
    const type = typeByte & 0x07;
    const width = typeByte >> 3;
    if (type === NULL) {
      values.push(null);
      continue;
    }
    if (type === FLOAT) {
      if (at + 8 > buf.length) fail('truncated float');
      values.push(buf.readDoubleBE(at));
      at += 8;
      continue;
    }
    if (width > 8 || at + width > buf.length) fail('truncated integer');
    let unsigned = 0n;
    for (let byte = 0; byte < width; byte++) unsigned = (unsigned << 8n) | BigInt(buf[at + byte]!);
    at += width;
    // A full-width integer carries its sign; shorter ones are non-negative (as cr-sqlite writes).
    const integer = width === 8 ? BigInt.asIntN(64, unsigned) : unsigned;
    if (type === INTEGER) {
      values.push(
        integer >= BigInt(Number.MIN_SAFE_INTEGER) && integer <= BigInt(Number.MAX_SAFE_INTEGER)
          ? Number(integer)
          : integer,
      );
      continue;
    }
    if (type !== TEXT && type !== BLOB) fail(`unknown type ${type}`);
    const length = Number(integer);
    if (at + length > buf.length) fail('truncated value');
    const bytes = buf.subarray(at, at + length);
    values.push(type === TEXT ? bytes.toString('utf8') : Buffer.from(bytes));
    at += length;
  }
  return values;
}
