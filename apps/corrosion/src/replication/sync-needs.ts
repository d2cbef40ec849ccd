import type { ActorState, Range } from '../crdt/bookkeeping.js';
import type { Store } from '../store.js';
import type { Changeset, WireActorState } from './codec.js';
import { versionChangesets } from './serve.js';

/** A version waiting in the apply queue: received, not yet merged. */
export interface Queued {
  actorId: Buffer;
  version: number;
}

/**
 * This node's sync state: per actor, head, gaps and partial versions. Versions waiting in the
 * apply queue count as had: under load a version can wait there longer than the peers' grace,
 * and a peer that sent it again would only feed the queue it is waiting in.
 */
export function syncState(store: Store, queued: Iterable<Queued> = []): WireActorState[] {
  const waiting = new Map<string, number[]>();
  for (const { actorId, version } of queued) {
    const hex = actorId.toString('hex');
    const versions = waiting.get(hex);
    if (versions) versions.push(version);
    else waiting.set(hex, [version]);
  }
  const states: WireActorState[] = [];
  for (const [site, state] of store.bookkeeping.state()) {
    const actorId = store.crdt.siteIdOf(site);
    const hex = actorId.toString('hex');
    const versions = waiting.get(hex);
    waiting.delete(hex);
    states.push({ actorId, ...(versions ? withQueued(state, versions) : state) });
  }
  for (const [hex, versions] of waiting) {
    const state = withQueued({ head: 0, gaps: [], partials: [] }, versions);
    states.push({ actorId: Buffer.from(hex, 'hex'), ...state });
  }
  return states;
}

/** An actor's state with `versions` counted as had: the head raised, the gaps cut around them. */
function withQueued(state: ActorState, versions: number[]): ActorState {
  const had = [...new Set(versions)].sort((a, b) => a - b);
  const head = Math.max(state.head, had.at(-1) ?? 0);
  const missing: Range[] = head > state.head ? [...state.gaps, [state.head + 1, head]] : state.gaps;
  const gaps: Range[] = [];
  for (const [start, end] of missing) {
    let from = start;
    for (let at = firstAtLeast(had, start); at < had.length && (had[at] ?? 0) <= end; at++) {
      const version = had[at] ?? 0;
      if (version > from) gaps.push([from, version - 1]);
      from = version + 1;
    }
    if (from <= end) gaps.push([from, end]);
  }
  return { head, gaps, partials: state.partials };
}

/** The index of the first of the sorted `values` that is at least `min`. */
function firstAtLeast(values: number[], min: number): number {
  let low = 0;
  let high = values.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    if ((values[middle] ?? 0) < min) low = middle + 1;
    else high = middle;
  }
  return low;
}

/**
 * The changesets this node can send a peer whose sync state is `peer`: every version it has
 * above the peer's head or inside the peer's gaps or partials, newest first, up to
 * `versionsMax` versions per round. Versions younger than `graceMs` are left out: broadcast is
 * still delivering them, and sending them again would only be duplicate work; if broadcast
 * lost one, the next round sends it.
 */
export function* changesetsFor(
  store: Store,
  peer: WireActorState[],
  chunkBytes: number,
  versionsMax: number,
  graceMs = 0,
): Generator<Changeset> {
  const tsMax = graceMs > 0 ? Date.now() - graceMs : Number.POSITIVE_INFINITY;
  const theirs = new Map(peer.map((actor) => [actor.actorId.toString('hex'), actor]));
  let served = 0;
  for (const site of store.bookkeeping.sites()) {
    const actorId = store.crdt.siteIdOf(site);
    const head = store.bookkeeping.head(site);
    const their = theirs.get(actorId.toString('hex'));
    const wanted: number[] = [];
    for (let version = head; version > (their?.head ?? 0); version--) wanted.push(version);
    for (const [start, end] of their?.gaps ?? []) {
      for (let version = Math.min(end, head); version >= start; version--) wanted.push(version);
    }
    for (const partial of their?.partials ?? []) wanted.push(partial.version);
    for (const version of wanted.sort((a, b) => b - a)) {
      if (served >= versionsMax) return;
      const sets = versionChangesets(store, actorId, version, chunkBytes, tsMax);
      if (sets === undefined) continue; // a gap here too, or too young
      served++;
      yield* sets;
    }
  }
}
