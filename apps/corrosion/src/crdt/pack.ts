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
 * and as short as possible; floats are 8 bytes big-endian. Sized first and written into one
 * buffer: every change read back for broadcast packs its row's key.
 */
export function packColumns(values: readonly SqlValue[]): Buffer {
  if (values.length > 255) throw new RangeError('at most 255 columns can be packed');
  let size = 1;
  for (const value of values) {
    if (value === null) size += 1;
    else if (typeof value === 'number' && !Number.isInteger(value)) size += 9;
    else if (typeof value === 'number' || typeof value === 'bigint') size += 1 + intWidth(value);
    else {
      const length = typeof value === 'string' ? Buffer.byteLength(value) : value.byteLength;
      size += 1 + intWidth(length) + length;
    }
  }
  const out = Buffer.allocUnsafe(size);
  out[0] = values.length;
  let at = 1;
  for (const value of values) {
    if (value === null) out[at++] = NULL;
    else if (typeof value === 'number' && !Number.isInteger(value)) {
      out[at] = FLOAT;
      at = out.writeDoubleBE(value, at + 1);
    } else if (typeof value === 'number' || typeof value === 'bigint') {
      at = writeInt(out, at, INTEGER, value);
    } else if (typeof value === 'string') {
      at = writeInt(out, at, TEXT, Buffer.byteLength(value));
      at += out.write(value, at, 'utf8');
    } else {
      at = writeInt(out, at, BLOB, value.byteLength);
      out.set(value, at);
      at += value.byteLength;
    }
  }
  return out;
}

/** Whether `value` takes the plain-number path (exact, and no sign to carry). */
const smallNatural = (value: number | bigint): value is number =>
  typeof value === 'number' && value >= 0 && Number.isSafeInteger(value);

/** cr-sqlite's rule: the fewest bytes whose span covers the highest non-zero byte. */
function intWidth(value: number | bigint): number {
  let width = 0;
  if (smallNatural(value)) {
    for (let rest = value; rest > 0; rest = Math.floor(rest / 256)) width++;
    return width;
  }
  for (let rest = BigInt.asUintN(64, BigInt(value)); rest !== 0n; rest >>= 8n) width++;
  return width;
}

/** Writes the type byte and the integer at `at`; returns the offset after them. */
function writeInt(out: Buffer, at: number, type: number, value: number | bigint): number {
  const width = intWidth(value);
  out[at] = (width << 3) | type;
  if (smallNatural(value)) {
    let rest = value;
    for (let byte = width; byte >= 1; byte--) {
      out[at + byte] = rest % 256;
      rest = Math.floor(rest / 256);
    }
  } else {
    let rest = BigInt.asUintN(64, BigInt(value));
    for (let byte = width; byte >= 1; byte--) {
      out[at + byte] = Number(rest & 0xffn);
      rest >>= 8n;
    }
  }
  return at + 1 + width;
}

export function unpackColumns(packed: Uint8Array): SqlValue[] {
  const buf = Buffer.from(packed.buffer, packed.byteOffset, packed.byteLength);
  const fail = (why: string): never => {
    throw new RangeError(`packed columns: ${why}`);
  };
  if (buf.length === 0) fail('empty');
  const values: SqlValue[] = [];
  let at = 1;
  const count = buf.readUInt8(0);
  for (let column = 0; column < count; column++) {
    if (at >= buf.length) fail('truncated');
    const typeByte = buf.readUInt8(at++);
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
    for (let byte = 0; byte < width; byte++)
      unsigned = (unsigned << 8n) | BigInt(buf.readUInt8(at + byte));
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
