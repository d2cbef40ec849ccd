import type { Database as Db } from 'better-sqlite3';

/** An inclusive range of versions or seqs. */
export type Range = [start: number, end: number];

/** What this node knows of one actor: the sync state Corrosion exchanges. */
export interface ActorState {
  head: number;
  /** Versions below the head never seen. */
  gaps: Range[];
  /** Versions seen in part: the seq ranges still missing. */
  partials: { version: number; lastSeq: number; missing: Range[] }[];
}

/**
 * Per actor (site ordinal): the highest version seen, the gaps below it and the partially
 * received versions, all in SQLite and written in the transaction that applies the changes, so a
 * crash never loses track of what is missing. Also every complete version's last seq, so a
 * version can be served in chunks whose coverage every server agrees on.
 */
export class Bookkeeping {
  readonly #heads = new Map<number, number>();
  /** `site:version` of the partial versions, so completing a whole one costs no deletes. */
  readonly #partials = new Set<string>();
  readonly #s: ReturnType<typeof prepareStatements>;
  readonly #db: Db;

  constructor(db: Db) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS __corro_versions (
        site INTEGER NOT NULL, version INTEGER NOT NULL, last_seq INTEGER NOT NULL, ts INTEGER NOT NULL,
        PRIMARY KEY (site, version)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS __corro_heads (site INTEGER PRIMARY KEY, head INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS __corro_gaps (
        site INTEGER NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL,
        PRIMARY KEY (site, start)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS __corro_partials (
        site INTEGER NOT NULL, version INTEGER NOT NULL, last_seq INTEGER NOT NULL, ts INTEGER NOT NULL,
        seen TEXT NOT NULL, PRIMARY KEY (site, version)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS __corro_buffered (
        site INTEGER NOT NULL, version INTEGER NOT NULL, seq INTEGER NOT NULL, change BLOB NOT NULL,
        PRIMARY KEY (site, version, seq)) WITHOUT ROWID;
    `);
    this.#db = db;
    this.reload();
    this.#s = prepareStatements(db);
  }

  /** Reads the in-memory mirrors (heads, partials) from the tables: at start, and after a
   *  transaction that touched them rolled back. */
  reload(): void {
    this.#heads.clear();
    this.#partials.clear();
    for (const row of this.#db.prepare('SELECT site, head FROM __corro_heads').all() as {
      site: number;
      head: number;
    }[]) {
      this.#heads.set(row.site, row.head);
    }
    for (const row of this.#db.prepare('SELECT site, version FROM __corro_partials').all() as {
      site: number;
      version: number;
    }[]) {
      this.#partials.add(`${row.site}:${row.version}`);
    }
  }

  head(site: number): number {
    return this.#heads.get(site) ?? 0;
  }

  sites(): number[] {
    return [...this.#heads.keys()];
  }

  /** The last seq and time of a complete version, if this node has it. */
  version(site: number, version: number): { last_seq: number; ts: number } | undefined {
    return this.#s.version.get(site, version) as { last_seq: number; ts: number } | undefined;
  }

  /**
   * Whether the version is complete here (its changes merged, or known to be empty). A version
   * past its site's head is not, known without a query: completing a version moves the head to
   * it at least, and a fresh write arrives past the head.
   */
  has(site: number, version: number): boolean {
    return version <= this.head(site) && this.version(site, version) !== undefined;
  }

  /** Records a complete version: head, gaps, and no longer partial. */
  complete(site: number, version: number, lastSeq: number, ts: number): void {
    this.#seen(site, version);
    this.#s.addVersion.run(site, version, lastSeq, ts);
    if (this.#partials.delete(`${site}:${version}`)) {
      this.#s.dropPartial.run(site, version);
      this.#s.dropBuffered.run(site, version);
    }
  }

  /**
   * Buffers part of a version. Returns the buffered changes (as stored, in seq order) once every
   * seq of the version is there, else null.
   */
  buffer(
    site: number,
    version: number,
    seqs: Range,
    lastSeq: number,
    ts: number,
    changes: { seq: number; bytes: Uint8Array }[],
  ): { fresh: boolean; complete: Buffer[] | null } {
    this.#seen(site, version);
    const row = this.#s.partial.get(site, version) as { seen: string } | undefined;
    const before = row ? (JSON.parse(row.seen) as Range[]) : [];
    const fresh = missingRanges(before, lastSeq).some(
      ([start, end]) => start <= seqs[1] && seqs[0] <= end,
    );
    if (!fresh) return { fresh, complete: null };
    const seen = mergeRanges([...before, seqs]);
    for (const change of changes)
      this.#s.buffer.run(site, version, change.seq, Buffer.from(change.bytes));
    if (missingRanges(seen, lastSeq).length === 0) {
      const all = (this.#s.buffered.all(site, version) as { change: Buffer }[]).map(
        (buffered) => buffered.change,
      );
      return { fresh, complete: all };
    }
    this.#s.setPartial.run(site, version, lastSeq, ts, JSON.stringify(seen));
    this.#partials.add(`${site}:${version}`);
    return { fresh, complete: null };
  }

  /** The sync state of every actor, as the peers exchange it. */
  state(): Map<number, ActorState> {
    const states = new Map<number, ActorState>();
    const of = (site: number) => {
      let state = states.get(site);
      if (!state) {
        state = { head: this.head(site), gaps: [], partials: [] };
        states.set(site, state);
      }
      return state;
    };
    for (const site of this.#heads.keys()) of(site);
    for (const gap of this.#s.gaps.all() as { site: number; start: number; end: number }[]) {
      of(gap.site).gaps.push([gap.start, gap.end]);
    }
    for (const partial of this.#s.partials.all() as {
      site: number;
      version: number;
      last_seq: number;
      seen: string;
    }[]) {
      of(partial.site).partials.push({
        version: partial.version,
        lastSeq: partial.last_seq,
        missing: missingRanges(JSON.parse(partial.seen) as Range[], partial.last_seq),
      });
    }
    return states;
  }

  gapCount(): number {
    return (this.#s.gapCount.get() as { n: number }).n;
  }

  bufferedCount(): number {
    return (this.#s.bufferedCount.get() as { n: number }).n;
  }

  /** A version was seen (whole or in part): move the head or close the gap it was in. */
  #seen(site: number, version: number): void {
    const head = this.head(site);
    if (version > head) {
      if (version > head + 1) this.#s.addGap.run(site, head + 1, version - 1);
      this.#heads.set(site, version);
      this.#s.setHead.run(site, version);
      return;
    }
    const gap = this.#s.gapAt.get(site, version, version) as
      | { start: number; end: number }
      | undefined;
    if (!gap) return;
    this.#s.dropGap.run(site, gap.start);
    if (gap.start < version) this.#s.addGap.run(site, gap.start, version - 1);
    if (version < gap.end) this.#s.addGap.run(site, version + 1, gap.end);
  }
}

/** The bookkeeping's statements, prepared once. */
function prepareStatements(db: Db) {
  return {
    version: db.prepare('SELECT last_seq, ts FROM __corro_versions WHERE site = ? AND version = ?'),
    addVersion: db.prepare('INSERT OR IGNORE INTO __corro_versions VALUES (?, ?, ?, ?)'),
    setHead: db.prepare('INSERT OR REPLACE INTO __corro_heads VALUES (?, ?)'),
    gapAt: db.prepare(
      'SELECT start, "end" FROM __corro_gaps WHERE site = ? AND start <= ? AND "end" >= ?',
    ),
    addGap: db.prepare('INSERT INTO __corro_gaps VALUES (?, ?, ?)'),
    dropGap: db.prepare('DELETE FROM __corro_gaps WHERE site = ? AND start = ?'),
    gaps: db.prepare('SELECT site, start, "end" FROM __corro_gaps ORDER BY site, start'),
    gapCount: db.prepare('SELECT coalesce(sum("end" - start + 1), 0) AS n FROM __corro_gaps'),
    partial: db.prepare(
      'SELECT last_seq, ts, seen FROM __corro_partials WHERE site = ? AND version = ?',
    ),
    setPartial: db.prepare('INSERT OR REPLACE INTO __corro_partials VALUES (?, ?, ?, ?, ?)'),
    dropPartial: db.prepare('DELETE FROM __corro_partials WHERE site = ? AND version = ?'),
    partials: db.prepare('SELECT site, version, last_seq, seen FROM __corro_partials'),
    buffer: db.prepare('INSERT OR IGNORE INTO __corro_buffered VALUES (?, ?, ?, ?)'),
    buffered: db.prepare(
      'SELECT change FROM __corro_buffered WHERE site = ? AND version = ? ORDER BY seq',
    ),
    dropBuffered: db.prepare('DELETE FROM __corro_buffered WHERE site = ? AND version = ?'),
    bufferedCount: db.prepare('SELECT count(*) AS n FROM __corro_buffered'),
  };
}

/** Sorted, merged (adjacent ranges joined) copy of `ranges`. */
export function mergeRanges(ranges: Range[]): Range[] {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const merged: Range[] = [];
  for (const [start, end] of sorted) {
    const last = merged.at(-1);
    if (last && start <= last[1] + 1) last[1] = Math.max(last[1], end);
    else merged.push([start, end]);
  }
  return merged;
}

/** The parts of [0, last] that `seen` does not cover. */
export function missingRanges(seen: Range[], last: number): Range[] {
  const missing: Range[] = [];
  let next = 0;
  for (const [start, end] of mergeRanges(seen)) {
    if (start > next) missing.push([next, Math.min(start - 1, last)]);
    next = Math.max(next, end + 1);
  }
  if (next <= last) missing.push([next, last]);
  return missing;
}
