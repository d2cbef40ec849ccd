import { present } from '@fleet/service/invariant';
import { broadcastEntrySize, type Changeset, encodeBroadcast, encodeChangeset } from './codec.js';

/** Who to send to: active members (alive or suspect), nearest by round-trip time or at random. */
export interface Peers {
  nearest(count: number): { addr: string }[];
  random(count: number): { addr: string }[];
  activeCount(): number;
}

export interface BroadcastOptions {
  peers: Peers;
  /** Sends one datagram body to each address (authenticated once for all of them). */
  send(addrs: string[], body: Uint8Array): void;
  /** Largest datagram body. */
  datagramBytes: number;
  /** Members a local change goes to at first: this many nearest, this many random. */
  nearest: number;
  random: number;
  /** Members a change new to us is passed on to (random). */
  relay: number;
  /** Up to this many active members, local changes go to all of them and are not relayed. */
  directMax: number;
  /**
   * Sends of a local change in all past `directMax` (the first, then re-sends with backoff to
   * random members); in a direct cluster, one.
   */
  sendsMax: number;
  /** Backoff before the first re-send; doubles after each. */
  resendMs: number;
  /** Changesets queued at most; past it the oldest-most-sent are dropped (sync repairs). */
  queueMax: number;
  /** Bytes sent per second at most; what does not fit waits for the next tick. */
  bytesPerSecond: number;
  tickMs: number;
  /**
   * Local commits go out at the next multiple of this on the wall clock, so every agent of the
   * cluster sends in step: a receiver then reads many writers' datagrams per wakeup (a wakeup
   * costs more than reading a datagram: `bench/receive-live.mjs`), and the commits of one slot
   * share datagrams (several changesets under one frame and MAC, up to `datagramBytes`). 0
   * sends each commit at once.
   */
  localSlotMs: number;
}

interface Item {
  /** Distinguishes items, so destinations due the same items share their datagrams. */
  id: number;
  encoded: Uint8Array;
  local: boolean;
  sends: number;
  dueAt: number;
  queuedAt: number;
}

/** What a flush works out once for all its items. */
interface PerFlush {
  /** A direct cluster's members, where its local changes go first. */
  everyone?: string[];
}

const addrsOf = (members: { addr: string }[]) => [...new Set(members.map((member) => member.addr))];

/**
 * The broadcast queue: after a local commit the version's changesets go to every member of a
 * small cluster once, or in a large one to a few nearest and a few random members, then are
 * re-sent with backoff a bounded number of times; changesets that
 * were new to this node are passed on once to a few random members. Each tick packs what is due
 * into datagrams per destination, within a bandwidth budget.
 */
export class Broadcaster {
  readonly #queue: Item[] = [];
  /** The next flush while items wait; none while the queue is empty (see #schedule). */
  #timer: NodeJS.Timeout | undefined;
  #budget: number;
  #timerAt = 0;
  #refilledAt = Date.now();
  #closed = false;
  #dropped = 0;
  #sentBytes = 0;
  #nextId = 0;
  /** The flush at the end of the current slot, while local commits wait for it. */
  #slot: NodeJS.Timeout | undefined;

  constructor(private readonly options: BroadcastOptions) {
    this.#budget = this.#perTick();
  }

  get length(): number {
    return this.#queue.length;
  }

  get dropped(): number {
    return this.#dropped;
  }

  get sentBytes(): number {
    return this.#sentBytes;
  }

  /** Queues changesets: `local` for this node's own commits, else new-to-us ones to relay. */
  enqueue(sets: Changeset[], local: boolean): void {
    // In a direct cluster every member got the change from its origin: nothing to relay.
    if (!local && this.#direct()) return;
    const now = Date.now();
    for (const set of sets) {
      const encoded = encodeChangeset(set);
      // A changeset over a datagram (one huge value) is left to sync, which streams over TCP.
      if (broadcastEntrySize(encoded) > this.options.datagramBytes) {
        this.#dropped++;
        continue;
      }
      const id = this.#nextId++;
      this.#queue.push({ id, encoded, local, sends: 0, dueAt: now, queuedAt: now });
    }
    if (this.#queue.length > this.options.queueMax) this.#shed();
    // Local commits go out at the end of the slot rather than on the next tick: latency is the point.
    if (!local) {
      this.#schedule(this.options.tickMs);
      return;
    }
    const slot = this.options.localSlotMs;
    if (slot === 0) this.flush();
    else if (this.#slot === undefined) {
      this.#slot = setTimeout(
        () => {
          this.#slot = undefined;
          this.flush();
        },
        slot - (Date.now() % slot),
      );
    }
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#slot);
  }

  /** Sends everything due that the budget allows. */
  flush(): void {
    const now = Date.now();
    // The budget refills with the time since the last flush, up to four ticks' worth.
    const refill = (this.options.bytesPerSecond * (now - this.#refilledAt)) / 1000;
    this.#budget = Math.min(this.#budget + refill, this.#perTick() * 4);
    this.#refilledAt = now;
    const byAddr = new Map<string, Item[]>();
    const direct = this.#direct();
    const perFlush: PerFlush = {};
    let spent = 0;
    let nextDue = Number.POSITIVE_INFINITY;
    for (let at = 0; at < this.#queue.length; ) {
      const item = present(this.#queue[at], 'a queued item below the length');
      if (item.dueAt > now) {
        nextDue = Math.min(nextDue, item.dueAt);
        at++;
        continue;
      }
      const targets = this.#targets(item, direct, perFlush);
      const cost = broadcastEntrySize(item.encoded) * targets.length;
      if (spent + cost > this.#budget && spent > 0) {
        nextDue = now + this.options.tickMs; // out of budget: the rest goes on the next tick
        break;
      }
      spent += cost;
      for (const addr of targets) {
        const parts = byAddr.get(addr) ?? [];
        byAddr.set(addr, parts);
        parts.push(item);
      }
      item.sends++;
      // In a direct cluster the origin's send is the only one: a re-send to a few random members
      // would reach the one that lost a datagram a few times in `directMax`; sync repairs it.
      const last =
        !item.local || direct || item.sends >= this.options.sendsMax || targets.length === 0;
      if (last) this.#queue.splice(at, 1);
      else {
        item.dueAt = now + this.options.resendMs * 2 ** (item.sends - 1);
        nextDue = Math.min(nextDue, item.dueAt);
        at++;
      }
    }
    this.#budget -= spent;
    if (nextDue !== Number.POSITIVE_INFINITY) this.#schedule(nextDue - now);
    // Destinations due the same items (every member, for a local change in a direct cluster)
    // share one encoding and one MAC of each datagram.
    const byItems = new Map<string, { addrs: string[]; items: Item[] }>();
    for (const [addr, items] of byAddr) {
      const key = items.map((item) => item.id).join(',');
      const group = byItems.get(key);
      if (group) group.addrs.push(addr);
      else byItems.set(key, { addrs: [addr], items });
    }
    for (const { addrs, items } of byItems.values()) this.#sendPacked(addrs, items);
  }

  /**
   * A flush in `delayMs` unless one is due sooner. Only while something waits: an idle node's
   * timer wakes it for nothing, and on a loaded host a wakeup costs about 0.1 ms of CPU (50 a
   * second per agent was a quarter of 20 idle agents' CPU).
   */
  #schedule(delayMs: number): void {
    if (this.#closed) return;
    const at = Date.now() + delayMs;
    if (this.#timer !== undefined && this.#timerAt <= at) return;
    clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.flush();
    }, delayMs);
    this.#timer.unref();
  }

  /** Whether the cluster is small enough for local changes to go to everyone directly. */
  #direct(): boolean {
    return this.options.peers.activeCount() <= this.options.directMax;
  }

  /**
   * Where an item goes this time. In a cluster of at most `directMax` active members a local
   * change goes straight to every one of them and nothing is relayed: the fewest datagrams that
   * reach everybody. Past that, the epidemic: a few nearest and a few random, then relays.
   */
  #targets(item: Item, direct: boolean, perFlush: PerFlush): string[] {
    const { peers, directMax } = this.options;
    if (item.local && item.sends === 0 && direct) {
      // Every active member, the same for every such item: asked once per flush.
      perFlush.everyone ??= addrsOf(peers.random(directMax));
      return perFlush.everyone;
    }
    let chosen: { addr: string }[];
    if (item.local && item.sends === 0) {
      chosen = [...peers.nearest(this.options.nearest), ...peers.random(this.options.random)];
    } else if (item.local) {
      chosen = peers.random(this.options.random); // a re-send, in case a datagram was lost
    } else {
      chosen = direct ? [] : peers.random(this.options.relay);
    }
    return addrsOf(chosen);
  }

  /** Packs changesets into as few datagrams as fit `datagramBytes`. */
  #sendPacked(addrs: string[], items: Item[]): void {
    let datagram: Uint8Array[] = [];
    let size = 0;
    const send = () => {
      if (datagram.length === 0) return;
      const body = encodeBroadcast(datagram);
      this.#sentBytes += body.length * addrs.length;
      this.options.send(addrs, body);
      datagram = [];
      size = 0;
    };
    for (const { encoded: part } of items) {
      const entry = broadcastEntrySize(part);
      if (size + entry > this.options.datagramBytes) send();
      datagram.push(part);
      size += entry;
    }
    send();
  }

  /** Over the bound: drop the items sent most, oldest first among equals. */
  #shed(): void {
    const excess = this.#queue.length - this.options.queueMax;
    const victims = [...this.#queue]
      .sort((a, b) => b.sends - a.sends || a.queuedAt - b.queuedAt)
      .slice(0, excess);
    const doomed = new Set(victims);
    const kept = this.#queue.filter((item) => !doomed.has(item));
    this.#queue.splice(0, this.#queue.length, ...kept);
    this.#dropped += excess;
  }

  #perTick(): number {
    return (this.options.bytesPerSecond * this.options.tickMs) / 1000;
  }
}
