import { describe, expect, it } from 'vitest';
import { statusText } from '../src/wan/status-text.js';

describe('fleet-wan status for a person', () => {
  it('lists the hosts as a table, then links, partitions and packet counters', () => {
    const text = statusText({
      run_id: 'r1',
      api: 'http://198.18.1.10:4280',
      hosts: [
        {
          id: 'iad-1',
          region: 'iad',
          roles: ['edge', 'worker'],
          address: '198.18.1.10',
          running: true,
        },
        {
          id: 'syd-worker-2',
          region: 'syd',
          roles: ['worker'],
          address: '198.18.3.12',
          running: false,
        },
      ],
      wan: {
        counters: { forwarded: 120, dropped_loss: 3 },
        queued: 0,
        partitions: [['198.18.3.12']],
        links: { 'iad-syd': { latency_ms: 99, loss: 0.01 } },
        pairs: { 'iad-syd': { packets: 300, dropped_loss: 3 } },
      },
    });
    const lines = text.split('\n');
    expect(lines[0]).toBe('run r1, Machines API http://198.18.1.10:4280');
    // Every column starts where its heading does, whatever the longest host id.
    const heading = lines[2] ?? '';
    expect(lines[3]?.indexOf('198.18.1.10')).toBe(heading.indexOf('ADDRESS'));
    expect(lines[4]?.indexOf('198.18.3.12')).toBe(heading.indexOf('ADDRESS'));
    expect(lines[4]).toMatch(/^syd-worker-2 +syd +worker +198\.18\.3\.12 +no$/);
    expect(text).toContain('  iad-syd  99 ms, loss 0.01, 300 packets, 3 lost\n');
    expect(text).toContain('partitions: 198.18.3.12\n');
    expect(text).toContain('packets: forwarded 120, dropped_loss 3; queued 0\n');
  });
});
