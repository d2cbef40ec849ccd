import { metrics } from '@opentelemetry/api';
import type { ReplicationStats } from './replication/replicator.js';

/** Every instrument of the corrosion agent, in one place. */
export function agentMetrics() {
  const meter = metrics.getMeter('fleet.corrosion');
  return {
    transactions: meter.createCounter('corro_transactions', {
      description: 'write transactions by outcome (ok, error)',
    }),
    queries: meter.createCounter('corro_queries', { description: 'read queries by outcome' }),
    subscribers: meter.createUpDownCounter('corro_subscribers', {
      description: 'subscription streams currently open',
    }),
    slowSubscribers: meter.createCounter('corro_subscribers_dropped', {
      description: 'subscribers disconnected because they did not read fast enough',
    }),
    dbVersion: meter.createObservableGauge('corro_db_version', {
      description: 'the agent db_version (local write transactions)',
    }),
  };
}

export type AgentMetrics = ReturnType<typeof agentMetrics>;

/** The gossip socket's instruments (one socket per agent). */
export function transportMetrics() {
  const meter = metrics.getMeter('fleet.corrosion');
  return {
    /** By `reason`: cluster, mac, malformed. */
    framesRejected: meter.createCounter('corro_frames_rejected', {
      description: 'frames dropped: another cluster, a bad MAC, or malformed',
    }),
  };
}

/** What the replication gauges read, at collection time only. */
interface ReplicationSource {
  stats(): ReplicationStats;
}

/** Replication's state as observable instruments: no cost on the hot paths. */
export function watchReplication(source: ReplicationSource): void {
  const meter = metrics.getMeter('fleet.corrosion');
  const gauge = (name: string, description: string) =>
    meter.createObservableGauge(name, { description });
  const counter = (name: string, description: string) =>
    meter.createObservableCounter(name, { description });
  const instruments = {
    members: gauge('corro_members', 'cluster members by state'),
    gaps: gauge('corro_gaps', 'versions known to exist but not received'),
    buffered: gauge('corro_buffered_changes', 'changes of partial versions waiting'),
    broadcastQueue: gauge('corro_broadcast_queue', 'changesets waiting to be broadcast'),
    applyQueue: gauge('corro_apply_queue', 'changesets waiting to be applied'),
    gossipUnread: gauge(
      'corro_gossip_unread_bytes',
      'bytes of datagrams arrived at the gossip socket and not yet read',
    ),
    lag: gauge('corro_apply_lag_ms', 'commit on the origin to merge here, worst of last batch'),
    applyDelay: gauge('corro_apply_delay_ms', 'how long the next apply batch gathers (adaptive)'),
    syncRounds: counter('corro_sync_rounds', 'anti-entropy sync rounds'),
    syncReceived: counter(
      'corro_sync_changesets_received',
      'changesets received by sync: what broadcast did not bring in time',
    ),
    syncDelay: gauge(
      'corro_sync_delay_ms',
      'wait before the next sync round (backs off when quiet)',
    ),
    applied: counter('corro_changes_applied', 'remote changes merged'),
    dropped: counter('corro_changesets_dropped', 'changesets dropped by a full queue'),
    rejected: counter('corro_sync_frames_rejected', 'sync frames with a bad cluster id or MAC'),
    protocolErrors: counter(
      'corro_protocol_errors',
      "peers' breaches of the sync and gossip protocols, by code",
    ),
  };
  meter.addBatchObservableCallback((result) => {
    const stats = source.stats();
    const byState = new Map<string, number>();
    for (const member of stats.members) {
      byState.set(member.state, (byState.get(member.state) ?? 0) + 1);
    }
    for (const state of ['alive', 'suspect', 'down']) {
      result.observe(instruments.members, byState.get(state) ?? 0, { state });
    }
    result.observe(instruments.gaps, stats.gaps);
    result.observe(instruments.buffered, stats.buffered_changes);
    result.observe(instruments.broadcastQueue, stats.broadcast_queue);
    result.observe(instruments.applyQueue, stats.apply_queue);
    result.observe(instruments.gossipUnread, stats.gossip_unread_bytes);
    result.observe(instruments.lag, stats.apply_lag_ms);
    result.observe(instruments.applyDelay, stats.apply_delay_ms);
    result.observe(instruments.syncRounds, stats.sync_rounds);
    result.observe(instruments.syncDelay, stats.sync_delay_ms);
    result.observe(instruments.syncReceived, stats.sync_changesets_received);
    result.observe(instruments.applied, stats.changes_applied);
    result.observe(instruments.dropped, stats.changesets_dropped);
    result.observe(instruments.rejected, stats.sync_frames_rejected);
    for (const [code, count] of Object.entries(stats.protocol_errors)) {
      result.observe(instruments.protocolErrors, count, { code });
    }
  }, Object.values(instruments));
}
