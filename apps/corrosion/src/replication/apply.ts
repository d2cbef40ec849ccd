import type { Change } from '../crdt/changes.js';
import type { RowChange } from '../crdt/crdt.js';
import type { Store } from '../store.js';
import { type Changeset, decodeChange, encodeChange } from './codec.js';

export interface ApplyOutcome {
  /** The changesets that told this node something new: these, and only these, are rebroadcast. */
  fresh: Changeset[];
  /** Rows whose values changed (for subscriptions and updates). */
  rows: RowChange[];
  /** Changes merged (complete versions only; partial ones wait in the buffer). */
  merged: number;
}

/**
 * Applies a batch of changesets in one transaction: a complete version merges at once; a part of
 * a version waits in the buffered-changes table until every seq is there, then the whole version
 * merges. Gaps, heads and partials are written in the same transaction. Our own versions and
 * versions already complete here are skipped.
 */
export function applyChangesets(store: Store, sets: Iterable<Changeset>): ApplyOutcome {
  const { crdt, bookkeeping } = store;
  const outcome: ApplyOutcome = { fresh: [], rows: [], merged: 0 };
  // Every complete version of the batch merges in one pass at the end, in order: whole new rows
  // of all of them are staged together (see crdt/staged-merge.ts).
  const complete: Change[][] = [];
  const merge = (changes: Change[]) => {
    complete.push(changes);
    outcome.merged += changes.length;
  };
  store.db.transaction(() => {
    for (const set of sets) {
      if (set.actorId.equals(crdt.siteId)) continue;
      const site = crdt.ordinal(set.actorId);
      if (bookkeeping.has(site, set.version)) continue;
      if (set.seqs[0] === 0 && set.seqs[1] >= set.lastSeq) {
        merge(set.changes);
        bookkeeping.complete(site, set.version, set.lastSeq, set.ts);
        outcome.fresh.push(set);
        continue;
      }
      const { fresh, complete } = bookkeeping.buffer(
        site,
        set.version,
        set.seqs,
        set.lastSeq,
        set.ts,
        set.changes.map((change) => ({ seq: change.seq, bytes: encodeChange(change) })),
      );
      if (fresh) outcome.fresh.push(set);
      if (complete) {
        merge(complete.map((bytes) => decodeChange(bytes, set.actorId, set.version)));
        bookkeeping.complete(site, set.version, set.lastSeq, set.ts);
      }
    }
    outcome.rows = crdt.merge(complete);
  })();
  return outcome;
}
