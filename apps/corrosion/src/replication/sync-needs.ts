import type { Store } from '../store.js';
import type { Changeset, WireActorState } from './codec.js';
import { versionChangesets } from './serve.js';

/** This node's sync state: per actor, head, gaps and partial versions. */
export function syncState(store: Store): WireActorState[] {
  return [...store.bookkeeping.state()].map(([site, state]) => ({
    actorId: store.crdt.siteIdOf(site),
    ...state,
  }));
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
