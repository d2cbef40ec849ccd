/**
 * Fly's `host_status` of a machine (fly-go's `HostStatusOk`, `HostStatusUnknown`,
 * `HostStatusUnreachable`): `unreachable` once the machine's host is down (its corrosion dead to
 * SWIM, see host-liveness.ts) — the machine's last known state is still reported beside it, as
 * Fly does, since nobody can say what became of it; `unknown` when no `hosts` row names the host.
 */
export type HostStatus = 'ok' | 'unknown' | 'unreachable';

export function hostStatusOf(hostState: string | null | undefined): HostStatus {
  if (hostState === null || hostState === undefined) return 'unknown';
  return hostState === 'down' ? 'unreachable' : 'ok';
}
