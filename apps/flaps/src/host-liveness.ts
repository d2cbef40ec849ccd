import type { CorrosionClient } from '@fleet/corrosion-client';
import type { Logger } from '@fleet/service';

/** A member of the local corrosion agent's SWIM view, as `/v1/status` lists it. */
export interface GossipMember {
  addr: string;
  /** `alive`, `suspect` or `down` (SWIM's dead: suspected past the timeout, spread to all). */
  state: string;
}

export interface HostLivenessRow {
  id: string;
  gossip_addr: string | null;
  status: string;
}

export interface LivenessChanges {
  down: string[];
  ready: string[];
}

/**
 * What SWIM's view says of each host's status. A host is down only once a member at its gossip
 * address is in SWIM's `down` state and none there is alive or suspect (a restarted agent comes
 * back under a new identity at the same address). Suspicion is not enough: SWIM already lets a
 * suspect refute, and indirect probes through other members keep one observer's lost packets
 * from condemning a host — so there is no timeout of ours on top. A host SWIM has forgotten (it
 * drops down members after a while), or never saw, keeps the status it has. Only `ready` and
 * `down` are switched: a `cordoned` host stays as its operator left it.
 */
export function livenessChanges(
  hosts: readonly HostLivenessRow[],
  members: readonly GossipMember[],
): LivenessChanges {
  const states = new Map<string, Set<string>>();
  for (const member of members) {
    const seen = states.get(member.addr) ?? new Set<string>();
    seen.add(member.state);
    states.set(member.addr, seen);
  }
  const changes: LivenessChanges = { down: [], ready: [] };
  for (const host of hosts) {
    if (host.gossip_addr === null) continue;
    const seen = states.get(host.gossip_addr);
    if (seen === undefined) continue;
    const live = seen.has('alive') || seen.has('suspect');
    if (!live && seen.has('down') && host.status === 'ready') changes.down.push(host.id);
    if (seen.has('alive') && host.status === 'down') changes.ready.push(host.id);
  }
  return changes;
}

export interface HostLivenessOptions {
  corrosion: CorrosionClient;
  corrosionUrl: string;
  corrosionToken: string | undefined;
  intervalMs: number;
  logger: Logger;
  /** Called once per host whose status this watcher changed. */
  onChange?: (hostId: string, status: 'down' | 'ready') => void;
}

/**
 * Keeps `hosts.status` in step with SWIM: every `intervalMs` it reads the local agent's members
 * and the hosts rows, and marks a host `down` when its corrosion is dead to the cluster, `ready`
 * when it is back. Edges then stop routing to the host's machines (the catalog skips down hosts)
 * and flaps reports them `host_status: unreachable`.
 */
export class HostLiveness {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;

  constructor(private readonly options: HostLivenessOptions) {}

  start(): void {
    this.#timer = setInterval(() => {
      // One round at a time: a slow corrosion must not pile rounds up.
      this.#running ??= this.round()
        .then(() => undefined)
        .catch((error: Error) =>
          this.options.logger.warn({ err: error.message }, 'host liveness round failed'),
        )
        .finally(() => {
          this.#running = undefined;
        });
    }, this.options.intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#running;
  }

  /** One look at the members and the hosts, and the writes that follow. */
  async round(): Promise<LivenessChanges> {
    const members = await this.#members();
    // An agent without gossip (a one-host fleet) has no members: nothing to judge.
    if (members.length === 0) return { down: [], ready: [] };
    const hosts = await this.options.corrosion.queryObjects<HostLivenessRow>(
      'SELECT id, gossip_addr, status FROM hosts WHERE gossip_addr IS NOT NULL',
    );
    const changes = livenessChanges(hosts, members);
    // The status is checked again in the write itself: an operator's cordon or flyd's own
    // `ready` may have landed since the read. Only the rows really changed are reported.
    const wanted = [
      ...changes.down.map((id) => ({ id, status: 'down' as const, from: 'ready' })),
      ...changes.ready.map((id) => ({ id, status: 'ready' as const, from: 'down' })),
    ];
    const applied: LivenessChanges = { down: [], ready: [] };
    if (wanted.length === 0) return applied;
    const answer = await this.options.corrosion.transaction(
      wanted.map((change) => [
        'UPDATE hosts SET status = ? WHERE id = ? AND status = ?',
        [change.status, change.id, change.from],
      ]),
    );
    wanted.forEach((change, index) => {
      if (answer.results[index]?.rows_affected !== 1) return;
      applied[change.status].push(change.id);
      if (change.status === 'down')
        this.options.logger.warn({ host: change.id }, 'host down: its corrosion is dead to SWIM');
      else
        this.options.logger.info({ host: change.id }, 'host ready: its corrosion is alive again');
      this.options.onChange?.(change.id, change.status);
    });
    return applied;
  }

  async #members(): Promise<GossipMember[]> {
    const response = await fetch(`${this.options.corrosionUrl}/v1/status`, {
      headers: this.options.corrosionToken
        ? { authorization: `Bearer ${this.options.corrosionToken}` }
        : {},
      signal: AbortSignal.timeout(Math.max(1_000, this.options.intervalMs)),
    });
    if (!response.ok) throw new Error(`corrosion /v1/status answered ${response.status}`);
    const status = (await response.json()) as { replication?: { members?: GossipMember[] } };
    return status.replication?.members ?? [];
  }
}
