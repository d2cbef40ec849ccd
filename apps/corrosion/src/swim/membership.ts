import { EventEmitter } from 'node:events';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { invariant } from '@fleet/service/invariant';
import { Channel } from '../transport/frame.js';
import type { UdpTransport } from '../transport/udp.js';
import { type SwimConfig, swimConfig } from './config.js';
import {
  decodeSwim,
  encodeSwim,
  type Identity,
  type Kind,
  type MemberState,
  type SwimMessage,
  type Update,
} from './messages.js';

export interface Member {
  actorId: string;
  addr: string;
  state: MemberState;
  incarnation: number;
  /** Round-trip time of the last direct probe, in ms. */
  rtt?: number;
}

interface Known {
  id: Identity;
  incarnation: number;
  state: MemberState;
  changedAt: number;
  rtt?: number;
}

interface Probe {
  target: string;
  sentAt: number;
  acked: boolean;
}

export interface MembershipOptions {
  transport: UdpTransport;
  identity: Identity;
  bootstrap: string[];
  /** A JSON file of known members' addresses: a restart announces to them without bootstrap. */
  statePath: string;
  config?: { probeIntervalMs?: number };
}

/** Updates piggybacked per message at most: a message stays well inside one datagram. */
const piggybackMax = 8;

/**
 * SWIM membership over the gossip socket: probe one member per period (ping, then ping-req
 * through a few others), suspicion with incarnation numbers (a live member refutes it), down
 * after a timeout scaled with the cluster, updates piggybacked on every message until spread,
 * periodic announce (to down members too, which heals partitions), and a renewed identity after
 * a restart or when this node learns it was declared down.
 */
export class Membership extends EventEmitter<{ up: [Member]; down: [Member] }> {
  #self: Identity;
  #incarnation = 0;
  readonly #members = new Map<string, Known>();
  readonly #pending = new Map<string, { update: Update; sent: number }>();
  readonly #probes = new Map<number, Probe>();
  #probeSeq = 0;
  #ring: string[] = [];
  #timers: NodeJS.Timeout[] = [];
  #gossipTimer: NodeJS.Timeout | undefined;
  #stopped = false;
  /** What the members file holds now, so an unchanged list is not written again. */
  #persistedText = '';
  readonly #periodMs: number;

  constructor(private readonly options: MembershipOptions) {
    super();
    this.#self = options.identity;
    this.#periodMs = options.config?.probeIntervalMs ?? 5_000;
    // A message that does not decode throws a ProtocolError: the transport drops it, counted.
    options.transport.on(Channel.SWIM, (body) => this.#receive(decodeSwim(body)));
  }

  get config(): SwimConfig {
    return swimConfig(this.#members.size + 1, this.#periodMs);
  }

  start(): void {
    this.#enqueue({ member: this.#self, incarnation: 0, state: 'alive' });
    this.#announce([...new Set([...this.options.bootstrap, ...this.#persisted()])]);
    const every = (ms: number, fn: () => void) => {
      const timer = setInterval(fn, ms);
      timer.unref();
      this.#timers.push(timer);
    };
    const config = this.config;
    every(config.probePeriodMs, () => this.#tick());
    every(config.announceEveryMs, () => this.#periodicAnnounce());
    this.#scheduleGossip();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const timer of this.#timers) clearInterval(timer);
    this.#timers = [];
    clearTimeout(this.#gossipTimer);
    this.#persist();
  }

  members(): Member[] {
    return [...this.#members.values()].map((known) => ({
      actorId: known.id.actorId,
      addr: known.id.addr,
      state: known.state,
      incarnation: known.incarnation,
      ...(known.rtt === undefined ? {} : { rtt: known.rtt }),
    }));
  }

  /**
   * Active members (alive or suspect, as foca counts them) with the lowest measured round-trip
   * time. A suspect is most often a member too busy to answer a probe in time: left out of the
   * broadcasts, it missed every write meanwhile, sync had to send them all, and under load that
   * work made more members suspect (20 agents at 500 writes/s fell to 300 a second this way).
   */
  nearest(count: number): Member[] {
    return this.members()
      .filter((member) => isActive(member.state))
      .sort((a, b) => (a.rtt ?? Number.MAX_VALUE) - (b.rtt ?? Number.MAX_VALUE))
      .slice(0, count);
  }

  /** Active members: alive or suspect. */
  activeCount(): number {
    let active = 0;
    for (const known of this.#members.values()) if (isActive(known.state)) active++;
    return active;
  }

  /** Active members (alive or suspect), at random. */
  random(count: number): Member[] {
    return shuffle(this.members().filter((member) => isActive(member.state))).slice(0, count);
  }

  /**
   * Alive members, at random: for sync, a TCP exchange that holds its round until it ends, which
   * a member that is really gone would hold until the connection times out.
   */
  randomAlive(count: number): Member[] {
    return shuffle(this.members().filter((member) => member.state === 'alive')).slice(0, count);
  }

  /** One protocol period: settle the last probe, time suspicions out, probe the next member. */
  #tick(): void {
    const now = Date.now();
    const config = this.config;
    for (const [seq, probe] of this.#probes) {
      if (now - probe.sentAt < config.probePeriodMs) continue;
      this.#probes.delete(seq);
      const known = this.#members.get(probe.target);
      if (!probe.acked && known?.state === 'alive') {
        this.#change(known, 'suspect', known.incarnation);
      }
    }
    for (const known of [...this.#members.values()]) {
      if (known.state === 'suspect' && now - known.changedAt > config.suspectToDownMs) {
        this.#change(known, 'down', known.incarnation);
      } else if (known.state === 'down' && now - known.changedAt > config.removeDownAfterMs) {
        this.#members.delete(known.id.actorId);
        this.#persist();
      }
    }
    const target = this.#nextTarget();
    if (!target) {
      // Alone: keep knocking on the bootstrap addresses until someone answers.
      this.#announce([...new Set([...this.options.bootstrap, ...this.#persisted()])]);
      return;
    }
    const seq = ++this.#probeSeq;
    this.#probes.set(seq, { target: target.id.actorId, sentAt: now, acked: false });
    this.#send(target.id.addr, 'PING', { probe: seq });
    const timer = setTimeout(() => {
      if (this.#probes.get(seq)?.acked !== false) return;
      const helpers = shuffle(
        [...this.#members.values()].filter(
          (known) => known.state === 'alive' && known.id.actorId !== target.id.actorId,
        ),
      ).slice(0, config.indirectProbes);
      for (const helper of helpers) {
        this.#send(helper.id.addr, 'PING_REQ', { probe: seq, target: target.id });
      }
    }, config.probeRttMs);
    timer.unref();
  }

  /** Round robin over a shuffled list of members that are not down (SWIM's target order). */
  #nextTarget(): Known | undefined {
    for (let tries = 0; tries < 2; tries++) {
      for (let actorId = this.#ring.pop(); actorId !== undefined; actorId = this.#ring.pop()) {
        const known = this.#members.get(actorId);
        if (known && isActive(known.state)) return known;
      }
      this.#ring = shuffle(
        [...this.#members.values()]
          .filter((known) => isActive(known.state))
          .map((known) => known.id.actorId),
      );
    }
    return undefined;
  }

  /**
   * Gossip rounds run only while updates are pending: a timer that wakes an idle agent ten times
   * a second for nothing costs it about 1 ms of CPU a second on a loaded host.
   */
  #scheduleGossip(): void {
    if (this.#stopped || this.#gossipTimer !== undefined) return;
    // Alone there is nobody to tell; a member that shows up is an update, which comes back here.
    if (this.#pending.size === 0 || this.#members.size === 0) return;
    this.#gossipTimer = setTimeout(() => {
      this.#gossipTimer = undefined;
      this.#gossip();
      this.#scheduleGossip();
    }, this.config.gossipEveryMs);
    this.#gossipTimer.unref();
  }

  #gossip(): void {
    if (this.#pending.size === 0) return;
    for (const member of this.random(this.config.gossipMembers)) this.#send(member.addr, 'GOSSIP');
  }

  /** Announces to a few members, down ones included: across a healed partition, that is how the
   *  two sides find each other again. */
  #periodicAnnounce(): void {
    const addrs = shuffle([...this.#members.values()].map((known) => known.id.addr));
    this.#announce(addrs.slice(0, this.config.announceMembers));
  }

  #announce(addrs: string[]): void {
    for (const addr of addrs) if (addr !== this.#self.addr) this.#send(addr, 'ANNOUNCE');
  }

  #receive(message: SwimMessage): void {
    const from = message.from;
    if (from.actorId === this.#self.actorId) return;
    this.#heard(from, message.incarnation);
    for (const update of message.updates) this.#apply(update);
    const reply = (kind: Kind, extra: Partial<SwimMessage> = {}) =>
      this.#send(from.addr, kind, extra);
    switch (message.kind) {
      case 'PING':
        reply('ACK', { probe: message.probe });
        break;
      case 'ACK':
        this.#acked(message.probe, from.actorId);
        break;
      case 'PING_REQ':
        if (message.target) {
          this.#send(message.target.addr, 'INDIRECT_PING', { probe: message.probe, origin: from });
        }
        break;
      case 'INDIRECT_PING':
        reply('INDIRECT_ACK', { probe: message.probe, origin: message.origin });
        break;
      case 'INDIRECT_ACK':
        if (message.origin) {
          this.#send(message.origin.addr, 'FORWARDED_ACK', { probe: message.probe, target: from });
        }
        break;
      case 'FORWARDED_ACK':
        this.#acked(message.probe);
        break;
      case 'ANNOUNCE':
        reply('FEED', { updates: this.#feed() });
        break;
    }
  }

  #acked(seq: number, direct?: string): void {
    const probe = this.#probes.get(seq);
    if (!probe) return;
    probe.acked = true;
    if (direct !== undefined && direct === probe.target) {
      const known = this.#members.get(direct);
      if (known) known.rtt = Date.now() - probe.sentAt;
    }
  }

  /** A message from a member is evidence it is alive (a newer identity replaces the old). */
  #heard(from: Identity, incarnation: number): void {
    const known = this.#members.get(from.actorId);
    if (known && known.id.ts === from.ts && known.state === 'down') {
      // It does not know it was declared down: tell it, so it rejoins under a renewed identity.
      this.#send(from.addr, 'GOSSIP', {
        updates: [{ member: from, incarnation: known.incarnation, state: 'down' }],
      });
      return;
    }
    this.#apply({ member: from, incarnation, state: 'alive' });
  }

  /** SWIM's precedence: a newer identity wins; down is final for an identity; suspect beats
   *  alive at the same incarnation; a higher incarnation beats both. */
  #apply(update: Update): void {
    const { member } = update;
    if (member.actorId === this.#self.actorId) {
      this.#aboutSelf(update);
      return;
    }
    if (!member.addr) return;
    const known = this.#members.get(member.actorId);
    if (!known || member.ts > known.id.ts) {
      const fresh: Known = {
        id: member,
        incarnation: update.incarnation,
        state: update.state,
        changedAt: Date.now(),
      };
      this.#members.set(member.actorId, fresh);
      this.#enqueue(update);
      this.#persist();
      if (update.state === 'alive') this.emit('up', this.#view(fresh));
      return;
    }
    if (member.ts < known.id.ts || known.state === 'down') return;
    const newer = update.incarnation > known.incarnation;
    const same = update.incarnation === known.incarnation;
    if (
      update.state === 'down' ||
      (update.state === 'suspect' && (newer || (same && known.state === 'alive'))) ||
      (update.state === 'alive' && newer)
    ) {
      this.#change(known, update.state, update.incarnation);
    }
  }

  #aboutSelf(update: Update): void {
    if (update.member.ts < this.#self.ts || update.state === 'alive') return;
    if (update.state === 'down') {
      // Declared down: that identity is over. Rejoin as a new one.
      this.#self = { ...this.#self, ts: Math.max(Date.now(), this.#self.ts + 1) };
      this.#incarnation = 0;
      this.#enqueue({ member: this.#self, incarnation: 0, state: 'alive' });
      this.#announce([...this.#members.values()].map((known) => known.id.addr));
      return;
    }
    if (update.incarnation >= this.#incarnation) {
      this.#incarnation = update.incarnation + 1; // refute the suspicion
      this.#enqueue({ member: this.#self, incarnation: this.#incarnation, state: 'alive' });
    }
  }

  #change(known: Known, state: MemberState, incarnation: number): void {
    const was = known.state;
    known.state = state;
    known.incarnation = incarnation;
    known.changedAt = Date.now();
    this.#enqueue({ member: known.id, incarnation, state });
    if (state === 'down' && was !== 'down') this.emit('down', this.#view(known));
    if (state === 'alive' && was === 'down') this.emit('up', this.#view(known));
  }

  #enqueue(update: Update): void {
    this.#pending.set(update.member.actorId, { update, sent: 0 });
    this.#scheduleGossip();
  }

  /** The least-sent pending updates, counted as sent once more. */
  #piggyback(): Update[] {
    const max = this.config.maxTransmissions;
    const chosen = [...this.#pending.values()]
      .sort((a, b) => a.sent - b.sent)
      .slice(0, piggybackMax);
    for (const entry of chosen) {
      entry.sent++;
      if (entry.sent >= max) this.#pending.delete(entry.update.member.actorId);
    }
    return chosen.map((entry) => entry.update);
  }

  /** An announcer learns the members this node knows (a bounded random sample) and itself. */
  #feed(): Update[] {
    const known = shuffle([...this.#members.values()].filter((member) => isActive(member.state)));
    return [
      { member: this.#self, incarnation: this.#incarnation, state: 'alive' as const },
      ...known.slice(0, 40).map((member) => ({
        member: member.id,
        incarnation: member.incarnation,
        state: member.state,
      })),
    ];
  }

  #send(addr: string, kind: Kind, extra: Partial<SwimMessage> = {}): void {
    if (this.#stopped) return;
    const message: SwimMessage = {
      kind,
      from: this.#self,
      incarnation: this.#incarnation,
      probe: 0,
      ...extra,
      updates: [...(extra.updates ?? []), ...this.#piggyback()],
    };
    this.options.transport.send(addr, Channel.SWIM, encodeSwim(message));
  }

  #view(known: Known): Member {
    return {
      actorId: known.id.actorId,
      addr: known.id.addr,
      state: known.state,
      incarnation: known.incarnation,
    };
  }

  #persisted(): string[] {
    try {
      const saved = JSON.parse(readFileSync(this.options.statePath, 'utf8')) as {
        members?: { addr?: unknown }[];
      };
      return (saved.members ?? [])
        .map((member) => member.addr)
        .filter((addr): addr is string => typeof addr === 'string');
    } catch {
      return [];
    }
  }

  /**
   * Written at once on every join or removal (rare, and a node killed right after joining must
   * still find its members), to a temporary file then renamed: a crash never leaves half a file.
   */
  #persist(): void {
    const members = [...this.#members.values()]
      .filter((known) => isActive(known.state))
      .map((known) => ({ actor_id: known.id.actorId, addr: known.id.addr }));
    const text = JSON.stringify({ members }, null, 1);
    // A rejoin under a renewed identity keeps actor id and address: nothing new to write.
    if (text === this.#persistedText) return;
    const temporary = `${this.options.statePath}.tmp`;
    writeFileSync(temporary, text);
    renameSync(temporary, this.options.statePath);
    this.#persistedText = text;
  }
}

/** Alive or suspect: a member as foca counts them until it is declared down. */
const isActive = (state: MemberState) => state !== 'down';

/** Fisher–Yates, in place. */
function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    const [atI, atJ] = [items[i], items[j]];
    invariant(atI !== undefined && atJ !== undefined, 'shuffled indexes are below the length');
    [items[i], items[j]] = [atJ, atI];
  }
  return items;
}
