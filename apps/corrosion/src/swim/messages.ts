import { loadProto } from '../transport/proto.js';

export interface Identity {
  actorId: string;
  addr: string;
  /** When this identity was taken: a restart renews it, and the newer identity wins. */
  ts: number;
}

export type MemberState = 'alive' | 'suspect' | 'down';

export interface Update {
  member: Identity;
  incarnation: number;
  state: MemberState;
}

export type Kind =
  | 'PING'
  | 'ACK'
  | 'PING_REQ'
  | 'INDIRECT_PING'
  | 'INDIRECT_ACK'
  | 'FORWARDED_ACK'
  | 'ANNOUNCE'
  | 'FEED'
  | 'GOSSIP';

export interface SwimMessage {
  kind: Kind;
  from: Identity;
  incarnation: number;
  probe: number;
  target?: Identity;
  origin?: Identity;
  updates: Update[];
}

const SwimType = loadProto('swim.proto').lookupType('corrosion.swim.SwimMessage');
const states: MemberState[] = ['alive', 'suspect', 'down'];

type Long = { toNumber(): number };
const num = (value: unknown): number =>
  value == null ? 0 : typeof value === 'number' ? value : (value as Long).toNumber();

const identityObject = (id: Identity) => ({ actor_id: id.actorId, addr: id.addr, ts: id.ts });
const identityFrom = (raw: Record<string, unknown>): Identity => ({
  actorId: String(raw.actor_id ?? ''),
  addr: String(raw.addr ?? ''),
  ts: num(raw.ts),
});

export function encodeSwim(message: SwimMessage): Uint8Array {
  return SwimType.encode(
    SwimType.fromObject({
      kind: message.kind,
      from: identityObject(message.from),
      incarnation: message.incarnation,
      probe: message.probe,
      target: message.target && identityObject(message.target),
      origin: message.origin && identityObject(message.origin),
      updates: message.updates.map((update) => ({
        member: identityObject(update.member),
        incarnation: update.incarnation,
        state: states.indexOf(update.state),
      })),
    }),
  ).finish();
}

export function decodeSwim(bytes: Uint8Array): SwimMessage {
  const raw = SwimType.toObject(SwimType.decode(bytes), { enums: String, defaults: true });
  return {
    kind: raw.kind as Kind,
    from: identityFrom(raw.from ?? {}),
    incarnation: num(raw.incarnation),
    probe: num(raw.probe),
    target: raw.target ? identityFrom(raw.target) : undefined,
    origin: raw.origin ? identityFrom(raw.origin) : undefined,
    updates: ((raw.updates as Record<string, unknown>[]) ?? []).map((update) => ({
      member: identityFrom((update.member as Record<string, unknown>) ?? {}),
      incarnation: num(update.incarnation),
      state: String(update.state).toLowerCase() as MemberState,
    })),
  };
}
