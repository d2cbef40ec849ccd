import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { unmountUnder } from '@fleet/service';
import { afterAll, describe, expect, it } from 'vitest';
import { listNamespaces, pidsInNamespace } from '../src/hosts/netns.js';
import { removeDeadRuns } from '../src/hosts/runs.js';
import { getThroughProxy } from '../src/launcher/demo.js';

const launcher = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'launcher', 'main.js');
const dir = mkdtempSync(join(tmpdir(), 'tl-'));
const children: ChildProcess[] = [];
afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  await removeDeadRuns();
  unmountUnder(dir); // a killed launcher's flyds' disks
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

function run(args: string[]) {
  const child = spawn(process.execPath, [launcher, '--state-dir', join(dir, 'state'), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return { child, exited, stderr: () => stderr };
}

// `npm start -- --topology FILE` as a user runs it: a bad file is refused naming the key; a
// two-region file brings the fleet up on namespaces, prints each region's edge (which serves the
// demo app from its own region), and Ctrl-C leaves no namespace or process of the run behind.
describe('npm start -- --topology', () => {
  it('refuses a bad topology file naming the key at fault (exit 2)', async () => {
    const file = join(dir, 'bad.json');
    writeFileSync(
      file,
      JSON.stringify({
        regions: [{ code: 'iad', name: 'a', lat: 0, lon: 0 }],
        hosts: [{ id: 'w', region: 'ord', roles: ['worker'] }],
      }),
    );
    const launched = run(['--topology', file]);
    expect(await launched.exited).toBe(2);
    expect(launched.stderr()).toContain('/hosts/0/region: no region "ord" in /regions');
  });

  it('brings a two-region fleet up, each edge serving from its region, and removes everything on SIGINT', async () => {
    const file = join(dir, 'two.json');
    writeFileSync(
      file,
      JSON.stringify({
        name: 'two-regions',
        regions: [
          { code: 'iad', name: 'Ashburn', lat: 38.94, lon: -77.46 },
          { code: 'lhr', name: 'London', lat: 51.47, lon: -0.45 },
        ],
        hosts: [
          { id: 'iad-1', region: 'iad', roles: ['edge', 'worker'] },
          { id: 'lhr-1', region: 'lhr', roles: ['edge', 'worker'] },
        ],
      }),
    );
    const launched = run(['--topology', file]);
    const lines: string[] = [];
    const edges = new Map<string, string>();
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: launched.child.stdout! }).on('line', (line) => {
        lines.push(line);
        const edge = /^ {2}(\w+) edge .* (http:\/\/198\.18\.[\d.:]+)\/$/.exec(line);
        if (edge) edges.set(edge[1]!, edge[2]!);
        if (line === 'Press Ctrl-C to stop.') resolve();
      });
      void launched.exited.then((code) =>
        reject(new Error(`exited ${code}: ${lines.join('\n')}${launched.stderr()}`)),
      );
    });
    const runId = /\(run ([0-9a-f]{6});/.exec(lines.join('\n'))![1]!;
    expect([...edges.keys()].sort()).toEqual(['iad', 'lhr']);
    for (const [region, url] of edges) {
      const answer = await getThroughProxy(url, 'demo.localhost');
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.body).region).toBe(region);
    }
    const namespaces = (await listNamespaces()).filter((name) => name.includes(`fleet-${runId}-`));
    expect(namespaces).toHaveLength(3); // two hosts and the router
    launched.child.kill('SIGINT');
    expect(await launched.exited).toBe(0);
    expect((await listNamespaces()).filter((name) => name.includes(runId))).toEqual([]);
    expect(namespaces.flatMap((name) => pidsInNamespace(name))).toEqual([]);
  }, 180_000);
});
