import { alignedRows } from '@fleet/service/text-table';

/** What `GET /v1/status` of the WAN's control server answers (control-server.ts, forwarder.py). */
export interface WanStatus {
  run_id: string;
  api: string;
  hosts: { id: string; region: string; roles: string[]; address: string; running: boolean }[];
  wan: {
    counters: Record<string, number>;
    queued: number;
    partitions: string[][];
    links: Record<string, { latency_ms: number; loss: number }>;
    pairs: Record<string, { packets: number; dropped_loss: number }>;
  };
}

/** `fleet-wan status` for a person: the hosts as a table, then the links, partitions, counters. */
export function statusText(status: WanStatus): string {
  const rows = [['HOST', 'REGION', 'ROLES', 'ADDRESS', 'RUNNING']];
  for (const host of status.hosts)
    rows.push([
      host.id,
      host.region,
      host.roles.join(','),
      host.address,
      host.running ? 'yes' : 'no',
    ]);
  const lines = [`run ${status.run_id}, Machines API ${status.api}`, '', ...alignedRows(rows)];
  const { wan } = status;
  lines.push('', 'links:');
  for (const [pair, link] of Object.entries(wan.links)) {
    const seen = wan.pairs[pair];
    const counted = seen ? `, ${seen.packets} packets, ${seen.dropped_loss} lost` : '';
    lines.push(`  ${pair}  ${link.latency_ms} ms, loss ${link.loss}${counted}`);
  }
  lines.push(
    `partitions: ${wan.partitions.length === 0 ? 'none' : wan.partitions.map((set) => set.join(' ')).join(' | ')}`,
    `packets: ${Object.entries(wan.counters)
      .map(([name, value]) => `${name} ${value}`)
      .join(', ')}; queued ${wan.queued}`,
  );
  return `${lines.join('\n')}\n`;
}
