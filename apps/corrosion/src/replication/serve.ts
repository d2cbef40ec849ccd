import type { Change } from '../crdt/changes.js';
import type { Store } from '../store.js';
import { type Changeset, encodeChange } from './codec.js';

/**
 * One version of one actor as this node can serve it now, cut into changesets of at most about
 * `maxBytes` of changes. The seq ranges cover 0..last_seq even where changes were overwritten
 * since (they are simply absent), so a version overwritten entirely is served as one empty
 * changeset and the receiver's gap still closes. Undefined when this node lacks the version or
 * it was committed after `tsMax` (checked before the changes are read: that is the cheap part).
 */
export function versionChangesets(
  store: Store,
  actorId: Buffer,
  version: number,
  maxBytes: number,
  tsMax = Number.POSITIVE_INFINITY,
): Changeset[] | undefined {
  const site = store.crdt.knownOrdinal(actorId);
  if (site === undefined) return undefined;
  const known = store.bookkeeping.version(site, version);
  if (!known || known.ts > tsMax) return undefined;
  return chunkChangesets(
    actorId,
    version,
    store.crdt.changesOf(site, version),
    known.last_seq,
    known.ts,
    maxBytes,
  );
}

/** Cuts a version's changes into changesets whose seq ranges cover 0..lastSeq. */
export function chunkChangesets(
  actorId: Buffer,
  version: number,
  changes: Change[],
  lastSeq: number,
  ts: number,
  maxBytes: number,
): Changeset[] {
  const known = { last_seq: lastSeq, ts };
  const sets: Changeset[] = [];
  let chunk: Changeset['changes'] = [];
  let bytes = 0;
  let start = 0;
  const cut = (end: number) => {
    sets.push({
      actorId,
      version,
      changes: chunk,
      seqs: [start, end],
      lastSeq: known.last_seq,
      ts: known.ts,
    });
    chunk = [];
    bytes = 0;
    start = end + 1;
  };
  for (const change of changes) {
    const size = encodeChange(change).length + 4;
    if (chunk.length > 0 && bytes + size > maxBytes) cut(change.seq - 1);
    chunk.push(change);
    bytes += size;
  }
  cut(known.last_seq);
  return sets;
}
