import { execFile, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { mainJs, tempDir } from './agent.js';
import { eventually, exec, health, type Node, query, startNode, status } from './cluster.js';
import { machinesSchema } from './crdt-helpers.js';

const run = promisify(execFile);
const token = 'cli-test-token';
const nodes: Node[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.process.stop()));
});

async function node(options: Parameters<typeof startNode>[0] = {}): Promise<Node> {
  const started = await startNode({
    ...options,
    env: { CORROSION_TOKEN: token, ...options.env },
  });
  nodes.push(started);
  return started;
}

const cli = (args: string[], env: NodeJS.ProcessEnv = process.env) =>
  run(process.execPath, [mainJs, ...args], { env });
// The token goes by file (or CORROSION_TOKEN), never as a flag's value: `ps` shows those to all.
let tokenFile: string | undefined;
const apiOf = (n: Node) => {
  if (tokenFile === undefined) {
    tokenFile = join(tempDir(), 'token');
    writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
  }
  return ['--api-addr', n.api.replace('http://', ''), '--api-token-file', tokenFile];
};

async function authed(n: Node, statements: unknown[]) {
  const response = await fetch(`${n.api}/v1/transactions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(statements),
  });
  expect(response.ok).toBe(true);
}

describe('corrosion CLI', () => {
  it('lists cluster members; refuses an admin call without the token', async () => {
    const a = await node();
    const b = await node({ bootstrap: [a.gossip] });
    await eventually(async () => expect((await health(a)).members).toBe(1));
    const { stdout } = await cli(['cluster', 'members', ...apiOf(a)]);
    expect(stdout).toMatch(new RegExp(`${b.gossip}\\s+alive`));
    const refused = await cli(['reload', '--api-addr', a.api.replace('http://', '')]).catch(
      (error: { code: number; stderr: string }) => error,
    );
    expect(refused).toMatchObject({ code: 1, stderr: expect.stringContaining('401') });
    // The token from CORROSION_TOKEN, as the agent takes it; a token as a flag's value is refused.
    const address = ['--api-addr', a.api.replace('http://', '')];
    const fromEnv = await cli(['query', '--sql', 'SELECT 1', ...address], {
      ...process.env,
      CORROSION_TOKEN: token,
    });
    expect(fromEnv.stdout).toBe('["1"]\n[1]\n'); // the columns, then the row
    const asFlag = await cli([
      'query',
      '--sql',
      'SELECT 1',
      ...address,
      '--api-token',
      token,
    ]).catch((error: { code: number; stderr: string }) => error);
    expect(asFlag).toMatchObject({ code: 2, stderr: expect.stringContaining('--api-token') });
  });

  it('backs up a running agent and restores it under a fresh actor id that rejoins the data', async () => {
    const a = await node();
    await authed(a, [["INSERT INTO machines (id, state) VALUES ('m1', 'started')"]]);
    const dir = tempDir();
    const backupFile = join(dir, 'backup.db');
    await cli(['backup', '--path', backupFile, ...apiOf(a)]);
    const restoredDir = tempDir();
    const { stdout } = await cli([
      'restore',
      '--from',
      backupFile,
      '--db',
      join(restoredDir, 'corrosion.db'),
    ]);
    const { actor_id: restoredActor } = JSON.parse(stdout) as { actor_id: string };
    const restored = await node({ dir: restoredDir, bootstrap: [a.gossip] });
    const healthOf = (n: Node) => status(n, token);
    expect((await healthOf(restored)).actor_id).toBe(restoredActor);
    expect(restoredActor).not.toBe((await healthOf(a)).actor_id);
    expect((await healthOf(restored)).version).toBe(0);
    const rows = () =>
      fetch(`${restored.api}/v1/queries`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify('SELECT id, state FROM machines'),
      }).then((response) => response.text());
    expect(await rows()).toContain('["m1","started"]');
    // A write on the restored node is a new actor's version 1, which A takes in.
    await authed(restored, [["INSERT INTO machines (id, state) VALUES ('m2', 'created')"]]);
    await eventually(async () => {
      const onA = await fetch(`${a.api}/v1/queries`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify("SELECT id FROM machines WHERE id = 'm2'"),
      }).then((response) => response.text());
      expect(onA).toContain('["m2"]');
    });
  });

  it('reloads the schema files: a new table appears without a restart', async () => {
    const schemaDir = join(tempDir(), 'schema');
    mkdirSync(schemaDir);
    writeFileSync(join(schemaDir, '1-machines.sql'), machinesSchema);
    const a = await node({ extra: ['--schema', schemaDir] });
    writeFileSync(
      join(schemaDir, '2-volumes.sql'),
      'CREATE TABLE volumes (id TEXT NOT NULL PRIMARY KEY, size_gb INTEGER NOT NULL DEFAULT 1);',
    );
    const { stdout } = await cli(['reload', ...apiOf(a)]);
    expect(JSON.parse(stdout)).toEqual({ tables: ['machines', 'volumes'] });
    await authed(a, [["INSERT INTO volumes (id) VALUES ('vol_1')"]]);
    writeFileSync(
      join(schemaDir, '1-machines.sql'),
      'CREATE TABLE other (id TEXT NOT NULL PRIMARY KEY);',
    );
    const refused = await cli(['reload', ...apiOf(a)]).catch((error: { stderr: string }) => error);
    expect(refused).toMatchObject({ stderr: expect.stringContaining('CORRO_ERR_SCHEMA_REFUSED') });
  });

  it('subscribe prints the rows, then the changes', async () => {
    const a = await startNode();
    nodes.push(a);
    await exec(a, [["INSERT INTO machines (id, state) VALUES ('m1', 'started')"]]);
    const child = spawn(process.execPath, [
      mainJs,
      'subscribe',
      '--api-addr',
      a.api.replace('http://', ''),
      '--sql',
      'SELECT id, state FROM machines',
    ]);
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    try {
      await eventually(async () => expect(out).toContain('"eoq"'));
      expect(out).toContain('{"row":[1,["m1","started"]]}');
      await exec(a, [["UPDATE machines SET state = 'stopped' WHERE id = 'm1'"]]);
      await eventually(async () =>
        expect(out).toContain('{"change":["update",1,["m1","stopped"],1]}'),
      );
    } finally {
      child.kill();
    }
    expect(await query(a, 'SELECT state FROM machines')).toEqual([['stopped']]);
  });
});
