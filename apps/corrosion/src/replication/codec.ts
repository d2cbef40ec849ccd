import protobuf from 'protobufjs';
import type { ActorState, Range } from '../crdt/bookkeeping.js';
import type { Change } from '../crdt/changes.js';
import type { SqlValue } from '../crdt/pack.js';
import { loadProto } from '../transport/proto.js';
import { decodeBroadcastFast } from './broadcast-decode.js';

const root = loadProto('replication.proto');
const ChangesetType = root.lookupType('corrosion.replication.Changeset');
const ChangeType = root.lookupType('corrosion.replication.Change');
const SyncMessageType = root.lookupType('corrosion.replication.SyncMessage');

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
  | { state: { actorId: Buffer; actors: WireActorState[] } }
  | { changeset: Changeset }
  | { done: true };

type Long = { toNumber(): number; toString(): string };
const num = (value: number | Long | null | undefined): number =>
  value == null ? 0 : typeof value === 'number' ? value : value.toNumber();

function encodeValue(value: SqlValue): object {
  if (value === null) return { null: true };
  if (typeof value === 'bigint') return { integer: String(value) }; // protobufjs parses decimal strings for 64-bit fields
  if (typeof value === 'number')
    return Number.isInteger(value) ? { integer: value } : { real: value };
  if (typeof value === 'string') return { text: value };
  return { blob: value };
}

function decodeValue(value: Record<string, unknown> | null | undefined): SqlValue {
  if (!value || value.kind === 'null') return null;
  if (value.kind === 'integer') {
    const integer = value.integer as number | Long;
    if (typeof integer === 'number') return integer;
    const big = BigInt(integer.toString());
    return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(big)
      : big;
  }
  if (value.kind === 'real') return value.real as number;
  if (value.kind === 'text') return value.text as string;
  return buffer(value.blob as Uint8Array);
}

/** protobufjs hands out Buffers in Node; copy only what is not one. */
const buffer = (bytes: Uint8Array): Buffer => (Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes));

function changeObject(change: Change): object {
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

function changeFrom(raw: Record<string, unknown>, actorId: Buffer, version: number): Change {
  return {
    table: raw.table as string,
    pk: buffer(raw.pk as Uint8Array),
    cid: raw.cid as string,
    val: decodeValue(raw.val as Record<string, unknown>),
    col_version: num(raw.col_version as Long),
    db_version: version,
    site_id: actorId,
    cl: num(raw.cl as Long),
    seq: num(raw.seq as Long),
    ts: num(raw.ts as Long),
  };
}

function changesetObject(set: Changeset): object {
  return {
    actor_id: set.actorId,
    version: set.version,
    changes: set.changes.map(changeObject),
    seq_start: set.seqs[0],
    seq_end: set.seqs[1],
    last_seq: set.lastSeq,
    ts: set.ts,
  };
}

function changesetFrom(raw: Record<string, unknown>): Changeset {
  const actorId = buffer(raw.actor_id as Uint8Array);
  const version = num(raw.version as Long);
  return {
    actorId,
    version,
    changes: ((raw.changes as Record<string, unknown>[]) ?? []).map((change) =>
      changeFrom(change, actorId, version),
    ),
    seqs: [num(raw.seq_start as Long), num(raw.seq_end as Long)],
    lastSeq: num(raw.last_seq as Long),
    ts: num(raw.ts as Long),
  };
}

export function encodeChangeset(set: Changeset): Uint8Array {
  return ChangesetType.encode(ChangesetType.fromObject(changesetObject(set))).finish();
}

export function decodeChangeset(bytes: Uint8Array): Changeset {
  return changesetFrom(ChangesetType.toObject(ChangesetType.decode(bytes), { oneofs: true }));
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

/** The hot path of every node: decoded by hand (see broadcast-decode.ts). */
export const decodeBroadcast = decodeBroadcastFast;

/** One change alone: how a partial version's pieces wait in the buffered-changes table. */
export function encodeChange(change: Change): Uint8Array {
  return ChangeType.encode(ChangeType.fromObject(changeObject(change))).finish();
}

export function decodeChange(bytes: Uint8Array, actorId: Buffer, version: number): Change {
  const raw = ChangeType.toObject(ChangeType.decode(bytes), { oneofs: true });
  return changeFrom(raw, actorId, version);
}

const rangeObject = ([start, end]: Range) => ({ start, end });
const rangeFrom = (raw: Record<string, Long>): Range => [num(raw.start), num(raw.end)];

export function encodeSyncMessage(message: SyncMessage): Uint8Array {
  let object: object;
  if ('state' in message) {
    object = {
      state: {
        actor_id: message.state.actorId,
        actors: message.state.actors.map((actor) => ({
          actor_id: actor.actorId,
          head: actor.head,
          gaps: actor.gaps.map(rangeObject),
          partials: actor.partials.map((partial) => ({
            version: partial.version,
            last_seq: partial.lastSeq,
            missing: partial.missing.map(rangeObject),
          })),
        })),
      },
    };
  } else if ('changeset' in message) object = { changeset: changesetObject(message.changeset) };
  else object = { done: true };
  return SyncMessageType.encode(SyncMessageType.fromObject(object)).finish();
}

export function decodeSyncMessage(bytes: Uint8Array): SyncMessage {
  const raw = SyncMessageType.toObject(SyncMessageType.decode(bytes), { oneofs: true }) as Record<
    string,
    unknown
  >;
  if (raw.kind === 'changeset')
    return { changeset: changesetFrom(raw.changeset as Record<string, unknown>) };
  if (raw.kind === 'done') return { done: true };
  const state = raw.state as Record<string, unknown>;
  return {
    state: {
      actorId: Buffer.from(state.actor_id as Uint8Array),
      actors: ((state.actors as Record<string, unknown>[]) ?? []).map((actor) => ({
        actorId: Buffer.from(actor.actor_id as Uint8Array),
        head: num(actor.head as Long),
        gaps: ((actor.gaps as Record<string, Long>[]) ?? []).map(rangeFrom),
        partials: ((actor.partials as Record<string, unknown>[]) ?? []).map((partial) => ({
          version: num(partial.version as Long),
          lastSeq: num(partial.last_seq as Long),
          missing: ((partial.missing as Record<string, Long>[]) ?? []).map(rangeFrom),
        })),
      })),
    },
  };
}
