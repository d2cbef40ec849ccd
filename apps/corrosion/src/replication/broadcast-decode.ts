import protobuf from 'protobufjs';
import type { Change } from '../crdt/changes.js';
import type { SqlValue } from '../crdt/pack.js';
import type { Changeset } from './codec.js';

type Reader = protobuf.Reader;

/**
 * The receive hot path's decoder of a Broadcast (replication.proto), by hand: every node decodes
 * every write, and protobufjs' generated decoder builds a message object per change and value
 * and a Long object per 64-bit field, all garbage at once. This reads the wire straight into
 * `Changeset`s, 64-bit integers as numbers (exact below 2^53, which versions, seqs and times never
 * reach), a value's integer as a BigInt only past 2^53. Unknown fields are skipped, as protobuf
 * requires. Property-tested equal to the generated decoder.
 */
export function decodeBroadcastFast(bytes: Uint8Array): Changeset[] {
  const reader = protobuf.Reader.create(bytes);
  const sets: Changeset[] = [];
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    if (tag === 10) sets.push(changeset(reader, reader.uint32() + reader.pos));
    else reader.skipType(tag & 7);
  }
  return sets;
}

/** The default of an absent bytes field, shared: a Buffer per default costs as much as a change. */
const noBytes = Buffer.alloc(0);

function changeset(reader: Reader, end: number): Changeset {
  let actorId: Buffer = noBytes;
  let version = 0;
  const raw: [number, number][] = []; // each change's byte range: read once the actor is known
  const seqs: [number, number] = [0, 0];
  let lastSeq = 0;
  let ts = 0;
  while (reader.pos < end) {
    const tag = reader.uint32();
    switch (tag) {
      case 10:
        actorId = buffer(reader.bytes());
        break;
      case 16:
        version = int64(reader);
        break;
      case 26: {
        const length = reader.uint32();
        raw.push([reader.pos, reader.pos + length]);
        reader.skip(length);
        break;
      }
      case 32:
        seqs[0] = int64(reader);
        break;
      case 40:
        seqs[1] = int64(reader);
        break;
      case 48:
        lastSeq = int64(reader);
        break;
      case 56:
        ts = int64(reader);
        break;
      default:
        reader.skipType(tag & 7);
    }
  }
  const changes: Change[] = [];
  for (const [from, to] of raw) {
    reader.pos = from;
    changes.push(change(reader, to, actorId, version, changes[changes.length - 1]?.pk));
  }
  reader.pos = end;
  return { actorId, version, changes, seqs, lastSeq, ts };
}

/**
 * One Change. `lastPk` is the previous change's pk: a row's changes sit together and repeat it,
 * so an equal pk shares that Buffer instead of slicing another.
 */
function change(
  reader: Reader,
  end: number,
  actorId: Buffer,
  version: number,
  lastPk: Buffer | undefined,
): Change {
  const decoded: Change = {
    table: '',
    pk: noBytes,
    cid: '',
    val: null,
    col_version: 0,
    db_version: version,
    site_id: actorId,
    cl: 0,
    seq: 0,
    ts: 0,
  };
  while (reader.pos < end) {
    const tag = reader.uint32();
    switch (tag) {
      case 10:
        decoded.table = reader.string();
        break;
      case 18:
        decoded.pk = pkBytes(reader, lastPk);
        break;
      case 26:
        decoded.cid = reader.string();
        break;
      case 34:
        decoded.val = value(reader, reader.uint32() + reader.pos);
        break;
      case 40:
        decoded.col_version = int64(reader);
        break;
      case 48:
        decoded.cl = int64(reader);
        break;
      case 56:
        decoded.seq = int64(reader);
        break;
      case 64:
        decoded.ts = int64(reader);
        break;
      default:
        reader.skipType(tag & 7);
    }
  }
  return decoded;
}

/** A SqlValue message; the last member of its oneof on the wire wins, as in protobufjs. */
function value(reader: Reader, end: number): SqlValue {
  let decoded: SqlValue = null;
  while (reader.pos < end) {
    const tag = reader.uint32();
    switch (tag) {
      case 8:
        reader.skip(); // a varint: the value of `null`
        decoded = null;
        break;
      case 16:
        decoded = sint64(reader);
        break;
      case 25:
        decoded = reader.double();
        break;
      case 34:
        decoded = reader.string();
        break;
      case 42:
        decoded = buffer(reader.bytes());
        break;
      default:
        reader.skipType(tag & 7);
    }
  }
  return decoded;
}

/** A varint's bytes: [start, end) in the reader's buffer. */
function varintBytes(reader: Reader): [number, number] {
  const start = reader.pos;
  reader.skip(); // with no length, skip() passes one varint (and checks the bounds)
  return [start, reader.pos];
}

/** An int64 as a number; a negative one (10 bytes, two's complement) as well as a double can. */
function int64(reader: Reader): number {
  const [start, end] = varintBytes(reader);
  const bytes = reader.buf;
  let value = 0;
  let scale = 1;
  // `?? 0` only narrows the type: varintBytes read these bytes, so every index is in range.
  for (let at = start; at < end; at++) {
    value += ((bytes[at] ?? 0) & 0x7f) * scale;
    scale *= 128;
  }
  return value >= 2 ** 63 ? value - 2 ** 64 : value;
}

/** A zigzag sint64: a number while exact, else a BigInt (as the generated path's decodeValue). */
function sint64(reader: Reader): number | bigint {
  const [start, end] = varintBytes(reader);
  const bytes = reader.buf;
  if (end - start <= 7) {
    // Below 2^49: exact as a number.
    let zigzag = 0;
    let scale = 1;
    for (let at = start; at < end; at++) {
      zigzag += ((bytes[at] ?? 0) & 0x7f) * scale;
      scale *= 128;
    }
    return zigzag % 2 === 0 ? zigzag / 2 : -(zigzag + 1) / 2;
  }
  let zigzag = 0n;
  for (let at = end - 1; at >= start; at--) {
    zigzag = (zigzag << 7n) | BigInt((bytes[at] ?? 0) & 0x7f);
  }
  zigzag = BigInt.asUintN(64, zigzag);
  const big = (zigzag >> 1n) ^ -(zigzag & 1n);
  return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(big)
    : big;
}

/** A length-delimited pk: `lastPk` itself when its bytes are the same. */
function pkBytes(reader: Reader, lastPk: Buffer | undefined): Buffer {
  if (lastPk !== undefined) {
    const bytes = reader.buf;
    const start = reader.pos;
    const length = reader.uint32();
    const from = reader.pos;
    let same = length === lastPk.length && from + length <= reader.len;
    for (let at = 0; same && at < length; at++) same = bytes[from + at] === lastPk[at];
    if (same) {
      reader.pos = from + length;
      return lastPk;
    }
    reader.pos = start;
  }
  return buffer(reader.bytes());
}

/** protobufjs hands out Buffers in Node; copy only what is not one. */
const buffer = (bytes: Uint8Array): Buffer => (Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes));
