import { ProtocolError } from '../errors.js';
import { int64Number as num, wire } from '../transport/wire.js';

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

/** swim.proto's message kinds, by name. */
export type Kind = keyof typeof wire.swim.Kind;

export interface SwimMessage {
  kind: Kind;
  from: Identity;
  incarnation: number;
  probe: number;
  target?: Identity;
  origin?: Identity;
  updates: Update[];
}

const { SwimMessage: SwimType, Kind: WireKind, State: WireState } = wire.swim;
type WireIdentity = wire.swim.IIdentity;
const states: Record<MemberState, wire.swim.State> = {
  alive: WireState.ALIVE,
  suspect: WireState.SUSPECT,
  down: WireState.DOWN,
};
const stateNames: Record<wire.swim.State, MemberState> = {
  [WireState.ALIVE]: 'alive',
  [WireState.SUSPECT]: 'suspect',
  [WireState.DOWN]: 'down',
};

const identityMessage = (id: Identity): WireIdentity => ({
  actor_id: id.actorId,
  addr: id.addr,
  ts: id.ts,
});
const identityFrom = (raw: WireIdentity | null | undefined): Identity => ({
  actorId: raw?.actor_id ?? '',
  addr: raw?.addr ?? '',
  ts: num(raw?.ts),
});

export function encodeSwim(message: SwimMessage): Uint8Array {
  return SwimType.encode({
    kind: WireKind[message.kind],
    from: identityMessage(message.from),
    incarnation: message.incarnation,
    probe: message.probe,
    target: message.target && identityMessage(message.target),
    origin: message.origin && identityMessage(message.origin),
    updates: message.updates.map((update) => ({
      member: identityMessage(update.member),
      incarnation: update.incarnation,
      state: states[update.state],
    })),
  }).finish();
}

const isKind = (name: string | undefined): name is Kind & string =>
  name !== undefined && name in WireKind;

/** An enum value this build does not know (a newer peer's) is refused as malformed. */
export function decodeSwim(bytes: Uint8Array): SwimMessage {
  let raw: wire.swim.SwimMessage;
  try {
    raw = SwimType.decode(bytes);
  } catch (error) {
    throw new ProtocolError(
      'CORRO_ERR_SWIM_MALFORMED',
      `a SWIM message that does not decode: ${(error as Error).message}`,
    );
  }
  const kind = WireKind[raw.kind];
  if (!isKind(kind)) {
    throw new ProtocolError('CORRO_ERR_SWIM_MALFORMED', `unknown SWIM message kind ${raw.kind}`);
  }
  return {
    kind,
    from: identityFrom(raw.from),
    incarnation: raw.incarnation,
    probe: num(raw.probe),
    target: raw.target ? identityFrom(raw.target) : undefined,
    origin: raw.origin ? identityFrom(raw.origin) : undefined,
    updates: raw.updates.map((update) => {
      const state = stateNames[update.state ?? WireState.ALIVE];
      if (state === undefined) {
        throw new ProtocolError('CORRO_ERR_SWIM_MALFORMED', `unknown member state ${update.state}`);
      }
      return {
        member: identityFrom(update.member),
        incarnation: update.incarnation ?? 0,
        state,
      };
    }),
  };
}
