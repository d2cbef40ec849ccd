import { afterEach, describe, expect, it } from 'vitest';
import { eventually, exec, health, type Node, query, startNode, tableOn } from './cluster.js';

const nodes: Node[] = [];
async function node(options: Parameters<typeof startNode>[0] = {}): Promise<Node> {
  const started = await startNode(options);
  nodes.push(started);
  return started;
}
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.process.stop()));
});

const machinesSql = 'SELECT id, state FROM machines ORDER BY id';
const insertMachine = (id: string, state = 'started') => [
  "INSERT INTO machines (id, app, state) VALUES (?, 'app', ?) ON CONFLICT (id) DO UPDATE SET state = excluded.state",
  [id, state],
];

describe('two agents', () => {
  it('join through bootstrap and see each other alive', async () => {
    const a = await node();
    const b = await node({ bootstrap: [a.gossip] });
    await eventually(async () => {
      expect((await health(a)).members).toBe(1);
      expect((await health(b)).members).toBe(1);
    });
  });

  it('a row written on A is readable on B; a 1,000-row transaction replicates whole', async () => {
    const a = await node();
    const b = await node({ bootstrap: [a.gossip] });
    await eventually(async () => expect((await health(b)).members).toBe(1));
    await exec(a, [insertMachine('m-1')]);
    await eventually(async () => expect(await query(b, machinesSql)).toEqual([['m-1', 'started']]));
    const many = Array.from({ length: 1000 }, (_, i) =>
      insertMachine(`bulk-${String(i).padStart(4, '0')}`),
    );
    const { version } = await exec(a, many);
    expect(version).toBe(2);
    await eventually(async () => {
      const [onA, onB] = await tableOn([a, b], machinesSql);
      expect(onB).toHaveLength(1001);
      expect(onB).toEqual(onA);
      expect((await health(b)).gaps).toBe(0);
    });
  });
});
