import type { Logger } from '@fleet/service';
import type { RowChange } from '../crdt/crdt.js';
import type { ProtocolErrorCode } from '../errors.js';
import type { ExecOutcome, Store } from '../store.js';
import { Membership } from '../swim/membership.js';
import { Channel } from '../transport/frame.js';
import { UdpTransport } from '../transport/udp.js';
import type { ApplyOutcome } from './apply.js';
import { ApplyQueue } from './apply-queue.js';
import { askedGraceMs, graceMs } from './asked-grace.js';
import { Broadcaster } from './broadcaster.js';
import { decodeBroadcast } from './codec.js';
import { ProtocolErrorTally } from './protocol-errors.js';
import { chunkChangesets } from './serve.js';
import { type SyncOptions, SyncServer, syncWith } from './sync.js';

export interface ReplicationConfig {
  /** host:port of gossip: SWIM and broadcasts over UDP, sync over TCP, on the same port. */
  gossipAddr: string;
  bootstrap: string[];
  clusterId: string;
  /** The fleet key: every frame carries an HMAC with it. */
  key: Buffer;
  /** Where the known members are kept, so a restart rejoins without bootstrap. */
  membersPath: string;
  syncIntervalMs: number;
  /** Peers synced with per round. */
  syncPeers: number;
  /** SWIM probe period; the other SWIM timings scale from it and the cluster size. */
  probeIntervalMs: number;
}

export interface ReplicationStats {
  members: { actor_id: string; addr: string; state: string; rtt_ms?: number }[];
  gaps: number;
  buffered_changes: number;
  broadcast_queue: number;
  /** Bytes of datagrams arrived at the gossip socket and not yet read (Linux; else 0). */
  gossip_unread_bytes: number;
  apply_queue: number;
  apply_lag_ms: number;
  /** How long the next apply batch gathers (adaptive: apply-pacing.ts). */
  apply_delay_ms: number;
  /** The 99th percentile of the last 1024 fresh changesets' apply lag. */
  apply_lag_p99_ms: number;
  sync_rounds: number;
  /** Changesets received by sync, either side of it: what broadcast did not bring in time. */
  sync_changesets_received: number;
  /** The wait before the next sync round: the interval, up to 4× while rounds find nothing. */
  sync_delay_ms: number;
  changes_applied: number;
  changesets_dropped: number;
  sync_frames_rejected: number;
  /** Datagrams dropped by reason: another cluster, a bad MAC, malformed. */
  frames_rejected: Record<string, number>;
  /** Peers' breaches of the sync and gossip protocols, by code (errors.ts). */
  protocol_errors: Partial<Record<ProtocolErrorCode, number>>;
}

/** Broadcast datagrams stay under a common path MTU, as foca's packets do. */
const datagramBytes = 1400;

/**
 * An agent's replication: SWIM membership, broadcast of local commits, relaying of what is new,
 * the apply pipeline, and anti-entropy sync with a few random members every interval.
 */
export class Replicator {
  #syncRounds = 0;
  #syncTimer: NodeJS.Timeout | undefined;
  #syncing = false;
  /** The wait before the next round: the interval, longer while rounds find nothing. */
  #syncDelayMs: number;
  #syncDueAt = 0;
  #stopped = false;

  private constructor(
    private readonly store: Store,
    private readonly config: ReplicationConfig,
    private readonly logger: Logger,
    readonly transport: UdpTransport,
    private readonly membership: Membership,
    private readonly broadcaster: Broadcaster,
    private readonly applyQueue: ApplyQueue,
    private readonly syncServer: SyncServer,
    private readonly protocolErrors: ProtocolErrorTally,
  ) {
    this.#syncDelayMs = config.syncIntervalMs;
    // A member that joins or comes back may lack, or hold, what nobody broadcast to it.
    membership.on('up', () => this.#syncSoon());
  }

  static async start(
    store: Store,
    config: ReplicationConfig,
    logger: Logger,
    onApplied: (rows: RowChange[]) => void,
  ): Promise<Replicator> {
    let applyQueue: ApplyQueue | undefined;
    let gossip: UdpTransport | undefined;
    const protocolErrors = new ProtocolErrorTally(logger);
    const { transport, syncServer } = await bindGossip(
      config,
      logger,
      protocolErrors,
      syncOptions(
        store,
        config,
        logger,
        protocolErrors,
        () => applyQueue,
        () => gossip,
      ),
    );
    gossip = transport;
    const membership = new Membership({
      transport,
      identity: { actorId: store.actorId, addr: transport.addr, ts: Date.now() },
      bootstrap: config.bootstrap,
      statePath: config.membersPath,
      config: { probeIntervalMs: config.probeIntervalMs },
    });
    const broadcaster = new Broadcaster({
      peers: membership,
      send: (addrs, body) => transport.sendMany(addrs, Channel.BROADCAST, body),
      datagramBytes,
      nearest: 3,
      random: 3,
      relay: 3,
      directMax: 40,
      sendsMax: 2,
      resendMs: 500,
      queueMax: 20_000,
      bytesPerSecond: 8 * 1024 * 1024,
      tickMs: 20,
      // At 25 writes a second per agent, 2–3 commits share each datagram of a 100 ms slot, and
      // the sends per write and a receiver's wakeups per write fall with them (README,
      // Convergence, session 23). Corrosion holds the broadcasts it does not send at once 500 ms.
      localSlotMs: 100,
    });
    applyQueue = new ApplyQueue(store, {
      batchMax: 500,
      pacing: { delayMsMin: 20, delayMsMax: 100, deepPerSecond: 400 },
      queueMax: 200_000,
      logger,
      onApplied: (outcome: ApplyOutcome) => {
        if (outcome.fresh.length > 0) broadcaster.enqueue(outcome.fresh, false);
        if (outcome.rows.length > 0) onApplied(outcome.rows);
      },
    });
    // One that does not decode throws a ProtocolError: the transport drops it, counted.
    transport.on(Channel.BROADCAST, (body: Uint8Array) => applyQueue.push(decodeBroadcast(body)));
    const replicator = new Replicator(
      store,
      config,
      logger,
      transport,
      membership,
      broadcaster,
      applyQueue,
      syncServer,
      protocolErrors,
    );
    membership.start();
    replicator.#scheduleSync(0);
    return replicator;
  }

  get gossipAddr(): string {
    return this.transport.addr;
  }

  /** After a local commit: broadcast the version. */
  committed(outcome: ExecOutcome): void {
    if (outcome.version === null) return;
    this.broadcaster.enqueue(
      chunkChangesets(
        this.store.crdt.siteId,
        outcome.version,
        outcome.changes,
        outcome.lastSeq,
        outcome.ts,
        datagramBytes - 200,
      ),
      true,
    );
  }

  stats(): ReplicationStats {
    return {
      members: this.membership.members().map((member) => ({
        actor_id: member.actorId,
        addr: member.addr,
        state: member.state,
        ...(member.rtt === undefined ? {} : { rtt_ms: member.rtt }),
      })),
      gaps: this.store.bookkeeping.gapCount(),
      buffered_changes: this.store.bookkeeping.bufferedCount(),
      broadcast_queue: this.broadcaster.length,
      gossip_unread_bytes: this.transport.unread.bytes(),
      apply_queue: this.applyQueue.length,
      apply_lag_ms: this.applyQueue.lagMs,
      apply_delay_ms: this.applyQueue.delayMs,
      apply_lag_p99_ms: this.applyQueue.lags.quantile(0.99),
      sync_rounds: this.#syncRounds,
      sync_delay_ms: this.#syncDelayMs,
      sync_changesets_received: this.applyQueue.receivedBySync,
      changes_applied: this.applyQueue.applied,
      changesets_dropped: this.broadcaster.dropped + this.applyQueue.dropped,
      sync_frames_rejected: this.protocolErrors.counts().CORRO_ERR_SYNC_FRAME_REJECTED ?? 0,
      frames_rejected: { ...this.transport.rejections },
      protocol_errors: this.protocolErrors.counts(),
    };
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#syncTimer);
    this.broadcaster.close();
    this.applyQueue.close();
    await this.membership.stop();
    await this.syncServer.close();
    this.transport.close();
  }

  /** Syncs now with a few random alive members (tests and the CLI use it too). */
  async syncNow(): Promise<number> {
    if (this.#syncing) return 0;
    this.#syncing = true;
    let received = 0;
    try {
      const peers = this.membership
        .randomAlive(this.config.syncPeers + this.transport.blocked.size)
        .filter((peer) => !this.transport.blocked.has(peer.addr))
        .slice(0, this.config.syncPeers);
      const results = await Promise.allSettled(
        peers.map((peer) =>
          syncWith(
            peer.addr,
            syncOptions(
              this.store,
              this.config,
              this.logger,
              this.protocolErrors,
              () => this.applyQueue,
              () => this.transport,
            ),
          ),
        ),
      );
      results.forEach((result, at) => {
        if (result.status === 'fulfilled') received += result.value.received;
        else
          syncFailed(
            this.logger,
            this.protocolErrors,
            result.reason,
            peers[at]?.addr,
            'sync with a peer failed',
          );
      });
      this.#syncRounds++;
    } finally {
      this.#syncing = false;
    }
    return received;
  }

  #scheduleSync(delayMs: number): void {
    if (this.#stopped) return;
    this.#syncDueAt = Date.now() + delayMs;
    this.#syncTimer = setTimeout(() => {
      this.syncNow()
        .then((received) => this.#backOff(received))
        .catch((error: unknown) => this.logger.warn({ err: error }, 'sync round failed'))
        .finally(() => this.#scheduleSync(this.#syncDelayMs));
    }, delayMs);
    this.#syncTimer.unref();
  }

  /**
   * A round that brought nothing while this node has no gap doubles the wait, up to
   * `syncBackoffMax` intervals: a quiet cluster spends a round's connections, states and reads
   * on nothing. Anything received, or any gap open, and rounds come every interval again.
   */
  #backOff(received: number): void {
    const { syncIntervalMs } = this.config;
    this.#syncDelayMs =
      received > 0 || this.store.bookkeeping.gapCount() > 0
        ? syncIntervalMs
        : Math.min(syncIntervalMs * syncBackoffMax, this.#syncDelayMs * 2);
  }

  /** The next round within one interval (never later than it was due). */
  #syncSoon(): void {
    this.#syncDelayMs = this.config.syncIntervalMs;
    if (this.#syncing || this.#syncDueAt <= Date.now() + this.#syncDelayMs) return;
    clearTimeout(this.#syncTimer);
    this.#scheduleSync(this.#syncDelayMs);
  }
}

/**
 * Binds the gossip port: UDP for SWIM and broadcasts, TCP on the same number for sync. With
 * port 0 the UDP port is picked first and the TCP one may turn out taken: then both are tried
 * again on another port.
 */
async function bindGossip(
  config: ReplicationConfig,
  logger: Logger,
  protocolErrors: ProtocolErrorTally,
  sync: SyncOptions,
): Promise<{ transport: UdpTransport; syncServer: SyncServer }> {
  const colon = config.gossipAddr.lastIndexOf(':');
  const host = config.gossipAddr.slice(0, colon);
  const port = Number(config.gossipAddr.slice(colon + 1));
  for (let attempt = 1; ; attempt++) {
    const transport = await UdpTransport.bind({
      host,
      port,
      key: config.key,
      clusterId: config.clusterId,
      logger,
      handlerFailed: (error, from) => {
        if (protocolErrors.breach(error, 'gossip datagram dropped', from)) return;
        logger.warn({ err: error, from }, 'gossip frame handler failed');
      },
    });
    const bound = Number(transport.addr.slice(transport.addr.lastIndexOf(':') + 1));
    try {
      return { transport, syncServer: await SyncServer.listen(host, bound, sync) };
    } catch (error) {
      transport.close();
      const taken = (error as NodeJS.ErrnoException).code === 'EADDRINUSE';
      if (!taken || port !== 0 || attempt >= 20) throw error;
    }
  }
}

/** A breach of the protocol is counted and warned of; a reset connection or a peer gone is not. */
function syncFailed(
  logger: Logger,
  protocolErrors: ProtocolErrorTally,
  error: unknown,
  peer: string | undefined,
  what: string,
): void {
  if (!protocolErrors.breach(error, what, peer)) logger.debug({ err: error, peer }, what);
}

/** The longest wait between sync rounds, in intervals (see `#backOff`). */
const syncBackoffMax = 4;

function syncOptions(
  store: Store,
  config: ReplicationConfig,
  logger: Logger,
  protocolErrors: ProtocolErrorTally,
  applyQueue: () => ApplyQueue | undefined,
  transport: () => UdpTransport | undefined,
): SyncOptions {
  return {
    store,
    key: config.key,
    clusterId: config.clusterId,
    chunkBytes: 64 * 1024,
    versionsMax: 5_000,
    graceMs,
    timeoutMs: 15_000,
    deliver: (sets) => applyQueue()?.push(sets, true),
    queued: () => applyQueue()?.queued ?? [],
    askedGraceMs: () =>
      askedGraceMs(
        applyQueue()?.recentLagMs(config.syncIntervalMs) ?? 0,
        transport()?.unread.behindMs() ?? 0,
      ),
    answerFailed: (error: unknown, peer: string) =>
      syncFailed(logger, protocolErrors, error, peer, 'sync from a peer failed'),
  };
}
