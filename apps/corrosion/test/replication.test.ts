import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { present } from '@fleet/service/invariant';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from './agent.js';
import {
  eventually,
  exec,
  health,
  type Node,
  query,
  startNode,
  status,
  tableOn,
} from './cluster.js';

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

describe('agents as processes', () => {
  it('a subscription on B sees writes made on A', async () => {
    const a = await node();
    const b = await node({ bootstrap: [a.gossip] });
    await eventually(async () => expect((await health(b)).members).toBe(1));
    const response = await fetch(`${b.api}/v1/subscriptions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify("SELECT id, state FROM machines WHERE state = 'started'"),
    });
    const reader = present(response.body, 'the subscription body')
      .pipeThrough(new TextDecoderStream())
      .getReader();
    let seen = '';
    await exec(a, [insertMachine('m-sub')]);
    await eventually(async () => {
      const { value } = await reader.read();
      seen += value ?? '';
      expect(seen).toContain('"change":["insert",1,["m-sub","started"],1]');
    });
    await reader.cancel();
  });

  it('refuses an agent with another fleet key: its frames are dropped and counted', async () => {
    const a = await node();
    const dir = tempDir();
    writeFileSync(join(dir, 'other.key'), 'a-different-key-0000000000');
    // The later flag wins: same cluster id, another key.
    await node({
      bootstrap: [a.gossip],
      dir,
      extra: ['--gossip-key-file', join(dir, 'other.key')],
    });
    await eventually(async () => {
      const { replication } = await status(a);
      expect(replication.frames_rejected.mac).toBeGreaterThan(0);
    });
    expect((await health(a)).members).toBe(0);
  });

  it('restarts intact after kill -9 mid-write and catches up without bootstrap', async () => {
    const a = await node();
    let b = await node({ bootstrap: [a.gossip] });
    await eventually(async () => expect((await health(b)).members).toBe(1));
    let writing = true;
    const writes = (async () => {
      for (let i = 0; writing; i++) {
        await exec(b, [insertMachine(`b-${i}`)]).catch(() => undefined);
      }
    })();
    await eventually(async () => expect((await query(a, machinesSql)).length).toBeGreaterThan(20));
    b.process.child.kill('SIGKILL');
    await b.process.exited;
    writing = false;
    await writes;
    const file = new Database(b.db, { readonly: true });
    expect(file.pragma('integrity_check')).toEqual([{ integrity_check: 'ok' }]);
    file.close();
    for (let i = 0; i < 50; i++) await exec(a, [insertMachine(`a-${i}`)]);
    nodes.splice(nodes.indexOf(b), 1);
    b = await node({ dir: b.dir }); // no bootstrap: it rejoins through its saved members
    await eventually(async () => {
      const [onA, onB] = await tableOn([a, b], machinesSql);
      expect(onB).toEqual(onA);
      expect((await health(a)).gaps).toBe(0);
      expect((await health(b)).gaps).toBe(0);
    }, 30_000);
  });
});
