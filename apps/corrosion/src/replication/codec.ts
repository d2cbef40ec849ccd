import protobuf from 'protobufjs/minimal.js';
import type { ActorState, Range } from '../crdt/bookkeeping.js';
import type { Change } from '../crdt/changes.js';
import type { SqlValue } from '../crdt/pack.js';
import { ProtocolError } from '../errors.js';
import { int64FromBigInt, int64Number as num, wire } from '../transport/wire.js';
import { decodeBroadcastFast } from './broadcast-decode.js';

type WireChange = wire.replication.IChange;
type WireChangeset = wire.replication.IChangeset;
type WireValue = wire.replication.ISqlValue;
type WireRange = wire.replication.IRange;
const {
  Change: ChangeType,
  Changeset: ChangesetType,
  SqlValue: SqlValueType,
  SyncMessage: SyncMessageType,
} = wire.replication;

/** Part or all of one version of one actor, as it travels between agents. */
export interface Changeset {
  actorId: Buffer;
  version: number;
  /** Each with site_id = actorId and db_version = version. */
  changes: Change[];
  seqs: Range;
  lastSeq: number;
  ts: number;
}

export interface WireActorState extends ActorState {
  actorId: Buffer;
}

export type SyncMessage =
  | { state: { actorId: Buffer; actors: WireActorState[]; graceMs: number } }
  | { changeset: Changeset }
  | { done: true };

function encodeValue(value: SqlValue): WireValue {
  if (value === null) return { null: true };
  if (typeof value === 'bigint') return { integer: int64FromBigInt(value) };
  if (typeof value === 'number')
    return Number.isInteger(value) ? { integer: value } : { real: value };
  if (typeof value === 'string') return { text: value };
  return { blob: value };
}

/** Decoded values are SqlValue objects, whose `kind` names the oneof's member last on the wire. */
function decodeValue(value: WireValue | null | undefined): SqlValue {
  if (!(value instanceof SqlValueType)) return null;
  switch (value.kind) {
    case 'integer': {
      const integer = value.integer ?? 0;
      if (typeof integer === 'number') return integer;
      const big = BigInt(integer.toString());
      return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER)
        ? Number(big)
        : big;
    }
    case 'real':
      return value.real ?? 0;
    case 'text':
      return value.text ?? '';
    case 'blob':
      return buffer(value.blob ?? new Uint8Array());
    default:
      return null;
  }
}

/** protobufjs hands out Buffers in Node; copy only what is not one. */
const buffer = (bytes: Uint8Array): Buffer => (Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes));

function changeMessage(change: Change): WireChange {
  return {
    table: change.table,
    pk: change.pk,
    cid: change.cid,
    val: encodeValue(change.val),
    col_version: change.col_version,
    cl: change.cl,
    seq: change.seq,
    ts: change.ts,
  };
}

function changeFrom(raw: WireChange, actorId: Buffer, version: number): Change {
  return {
    table: raw.table ?? '',
    pk: buffer(raw.pk ?? new Uint8Array()),
    cid: raw.cid ?? '',
    val: decodeValue(raw.val),
    col_version: num(raw.col_version),
    db_version: version,
    site_id: actorId,
    cl: num(raw.cl),
    seq: num(raw.seq),
    ts: num(raw.ts),
  };
}

function changesetMessage(set: Changeset): WireChangeset {
  return {
    actor_id: set.actorId,
    version: set.version,
    changes: set.changes.map(changeMessage),
    seq_start: set.seqs[0],
    seq_end: set.seqs[1],
    last_seq: set.lastSeq,
    ts: set.ts,
  };
}

function changesetFrom(raw: WireChangeset): Changeset {
  const actorId = buffer(raw.actor_id ?? new Uint8Array());
  const version = num(raw.version);
  return {
    actorId,
    version,
    changes: (raw.changes ?? []).map((change) => changeFrom(change, actorId, version)),
    seqs: [num(raw.seq_start), num(raw.seq_end)],
    lastSeq: num(raw.last_seq),
    ts: num(raw.ts),
  };
}

export function encodeChangeset(set: Changeset): Uint8Array {
  return ChangesetType.encode(changesetMessage(set)).finish();
}

export function decodeChangeset(bytes: Uint8Array): Changeset {
  return changesetFrom(ChangesetType.decode(bytes));
}

/**
 * A Broadcast datagram from changesets encoded once (encodeChangeset): each becomes field 1,
 * length-delimited, exactly as encoding the message would write it.
 */
export function encodeBroadcast(encodedSets: Uint8Array[]): Uint8Array {
  const writer = protobuf.Writer.create();
  for (const set of encodedSets) writer.uint32(10).bytes(set);
  return writer.finish();
}

/** The bytes one encoded changeset adds to a Broadcast. */
export function broadcastEntrySize(encodedSet: Uint8Array): number {
  const length = encodedSet.length;
  return 1 + (length < 0x80 ? 1 : length < 0x4000 ? 2 : length < 0x200000 ? 3 : 4) + length;
}

/**
 * A broadcast off the wire, on the hot path of every node: decoded by hand (see
 * broadcast-decode.ts); one that does not decode is CORRO_ERR_BROADCAST_MALFORMED.
 */
export function decodeBroadcast(bytes: Uint8Array): Changeset[] {
  try {
    return decodeBroadcastFast(bytes);
  } catch (error) {
    throw new ProtocolError(
      'CORRO_ERR_BROADCAST_MALFORMED',
      `a broadcast that does not decode: ${(error as Error).message}`,
    );
  }
}

/** One change alone: how a partial version's pieces wait in the buffered-changes table. */
export function encodeChange(change: Change): Uint8Array {
  return ChangeType.encode(changeMessage(change)).finish();
}

export function decodeChange(bytes: Uint8Array, actorId: Buffer, version: number): Change {
  return changeFrom(ChangeType.decode(bytes), actorId, version);
}

const rangeMessage = ([start, end]: Range): WireRange => ({ start, end });
const rangeFrom = (raw: WireRange): Range => [num(raw.start), num(raw.end)];

function actorStateMessage(actor: WireActorState): wire.replication.IActorState {
  return {
    actor_id: actor.actorId,
    head: actor.head,
    gaps: actor.gaps.map(rangeMessage),
    partials: actor.partials.map((partial) => ({
      version: partial.version,
      last_seq: partial.lastSeq,
      missing: partial.missing.map(rangeMessage),
    })),
  };
}

function actorStateFrom(raw: wire.replication.IActorState): WireActorState {
  return {
    actorId: Buffer.from(raw.actor_id ?? new Uint8Array()),
    head: num(raw.head),
    gaps: (raw.gaps ?? []).map(rangeFrom),
    partials: (raw.partials ?? []).map((partial) => ({
      version: num(partial.version),
      lastSeq: num(partial.last_seq),
      missing: (partial.missing ?? []).map(rangeFrom),
    })),
  };
}

export function encodeSyncMessage(message: SyncMessage): Uint8Array {
  let wireMessage: wire.replication.ISyncMessage;
  if ('state' in message) {
    wireMessage = {
      state: {
        actor_id: message.state.actorId,
        actors: message.state.actors.map(actorStateMessage),
        grace_ms: message.state.graceMs,
      },
    };
  } else if ('changeset' in message)
    wireMessage = { changeset: changesetMessage(message.changeset) };
  else wireMessage = { done: true };
  return SyncMessageType.encode(wireMessage).finish();
}

/** A sync message off the wire; one that does not decode is CORRO_ERR_SYNC_MALFORMED. */
export function decodeSyncMessage(bytes: Uint8Array): SyncMessage {
  let decoded: wire.replication.SyncMessage;
  try {
    decoded = SyncMessageType.decode(bytes);
  } catch (error) {
    throw new ProtocolError(
      'CORRO_ERR_SYNC_MALFORMED',
      `a sync message that does not decode: ${(error as Error).message}`,
    );
  }
  if (decoded.kind === 'changeset' && decoded.changeset)
    return { changeset: changesetFrom(decoded.changeset) };
  if (decoded.kind === 'done') return { done: true };
  const state = decoded.state;
  if (decoded.kind !== 'state' || !state) {
    throw new ProtocolError('CORRO_ERR_SYNC_MALFORMED', 'a sync message with no content');
  }
  return {
    state: {
      actorId: Buffer.from(state.actor_id ?? new Uint8Array()),
      actors: (state.actors ?? []).map(actorStateFrom),
      graceMs: state.grace_ms ?? 0,
    },
  };
}
