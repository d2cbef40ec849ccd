import { spawn } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { FlapsClient } from '@fleet/flaps-client';
import { packImage } from '@fleet/images';
import { sampleImagesDir } from '@fleet/sample-images';
import { isRunning, unmountUnder } from '@fleet/service';
import { describe, expect, it } from 'vitest';
import { getThroughProxy } from '../src/launcher/demo.js';
import { outsideRootsDir } from '../src/machine-roots.js';
import { pidsWithEnv, processTree } from './processes.js';

const launcher = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'launcher', 'main.js');
const root = process.getuid?.() === 0;

// What `npm start` runs, run as a user would: the built launcher uploads the sample images and brings
// up the demo app with two machines running the `hello` image by its digest, prints a working
// curl line, and on Ctrl-C (SIGINT) takes everything down, exit 0.
describe('the fleet launcher (npm start)', () => {
  it('serves the demo app and shuts down cleanly on SIGINT', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'fleet-launcher-'));
    const { child, exited, output, proxyUrl } = await launch(stateDir);
    expect(output.join('\n')).toContain('Press Ctrl-C to stop.');

    const hello = await packImage(join(sampleImagesDir, 'hello'));
    const machineIds = new Set<string>();
    for (let attempt = 0; attempt < 20 && machineIds.size < 2; attempt++) {
      const answer = await getThroughProxy(proxyUrl, 'demo.localhost');
      expect(answer.status).toBe(200);
      const served = JSON.parse(answer.body);
      expect(served.image).toBe(`hello@${hello.digest}`);
      machineIds.add(served.machine_id);
    }
    expect(machineIds.size).toBe(2);
    const machinePids = [...machineIds].flatMap((id) => pidsWithEnv('FLY_MACHINE_ID', id));
    expect(machinePids.length).toBeGreaterThanOrEqual(2);
    const secrets = JSON.parse(readFileSync(join(stateDir, 'secrets.json'), 'utf8'));
    expect(secrets.apiToken).toMatch(/^[0-9a-f]{48}$/);

    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(machinePids.filter(isRunning)).toEqual([]);
  });

  // A checkout pulled since the last `npm start` may bring a new `hello`: the demo machines the
  // state kept are brought to it (they ran the old one, unreachable once machines had networks
  // of their own and the old one listened on loopback only).
  it("brings the demo machines a previous run left to this checkout's hello", async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'fleet-launcher-'));
    const hello = await packImage(join(sampleImagesDir, 'hello'));
    const first = await launch(stateDir);
    const { apiToken } = JSON.parse(readFileSync(join(stateDir, 'secrets.json'), 'utf8'));
    let flaps = new FlapsClient(first.apiUrl, apiToken);
    const [old] = await flaps.listMachines('demo');
    await flaps.updateMachine('demo', old!.id, { config: { ...old!.config, image: 'hello' } });
    first.child.kill('SIGINT');
    expect(await first.exited).toBe(0);

    const second = await launch(stateDir);
    try {
      flaps = new FlapsClient(second.apiUrl, apiToken);
      const machines = await flaps.listMachines('demo');
      expect(machines.map((machine) => machine.id)).toContain(old!.id);
      for (const machine of machines) {
        expect(machine.config.image).toBe(`hello@${hello.digest}`);
        expect(machine.state).toBe('started');
      }
      expect((await getThroughProxy(second.proxyUrl, 'demo.localhost')).status).toBe(200);
    } finally {
      second.child.kill('SIGINT');
      await second.exited;
    }
  });

  // A server that dies (a crash, an OOM kill, a kill -9) is restarted on the address it had, as
  // systemd restarts it on a worker: flyd comes back, adopts the machines that ran on, answers the
  // Machines API again, and still stops them when the fleet stops.
  it('restarts a server that exits on its own, on the address it had', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'fleet-launcher-'));
    const { child, exited, output, proxyUrl, apiUrl } = await launch(stateDir);
    const flyd = () =>
      processTree(child.pid!).filter((one) => one.cmdline.includes('/apps/flyd/dist/main.js'));
    const [first] = flyd();
    const { apiToken } = JSON.parse(readFileSync(join(stateDir, 'secrets.json'), 'utf8'));
    const flaps = new FlapsClient(apiUrl, apiToken);
    const machines = (await flaps.listMachines('demo')).map((machine) => machine.id);
    const machinePids = machines.flatMap((id) => pidsWithEnv('FLY_MACHINE_ID', id));
    process.kill(first!.pid, 'SIGKILL');
    await expect
      .poll(() => output.join(''), { timeout: 10_000 })
      .toMatch(/flyd exited on its own \(SIGKILL\); restarting it \(its log: .*flyd\.log\)/);
    await expect.poll(() => flyd().length, { timeout: 20_000 }).toBe(1);
    const [second] = flyd();
    expect(second!.pid).not.toBe(first!.pid);
    // The same --listen address: flaps reaches it at the URL it knew.
    const listen = (one: { cmdline: string }) => /--listen (\S+)/.exec(one.cmdline)?.[1];
    expect(listen(second!)).toMatch(/^127\.0\.0\.1:[1-9]\d*$/);
    await expect
      .poll(async () => (await flaps.getMachine('demo', machines[0]!)).state, { timeout: 20_000 })
      .toBe('started');
    await flaps.restartMachine('demo', machines[0]!);
    await flaps.waitMachine('demo', machines[0]!, 'started');
    expect((await getThroughProxy(proxyUrl, 'demo.localhost')).status).toBe(200);
    // The other machine ran on through it all: adopted, not started again.
    const untouched = pidsWithEnv('FLY_MACHINE_ID', machines[1]!);
    expect(untouched.every((pid) => machinePids.includes(pid))).toBe(true);

    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(machines.flatMap((id) => pidsWithEnv('FLY_MACHINE_ID', id)).filter(isRunning)).toEqual(
      [],
    );
  });

  // `npm start` keeps its state in the checkout, a Node project: a machine there must not see
  // the checkout's package.json ("type": "module" broke every CommonJS app) or node_modules.
  it('runs machines as on a worker although its state lies inside a Node project', async () => {
    const project = mkdtempSync(join(tmpdir(), 'fleet-checkout-'));
    writeFileSync(join(project, 'package.json'), '{"type": "module"}\n');
    mkdirSync(join(project, 'node_modules', 'leaked'), { recursive: true });
    writeFileSync(join(project, 'node_modules', 'leaked', 'index.js'), 'module.exports = 1;\n');
    const stateDir = join(project, '.fleet');
    const rootsDir = outsideRootsDir(join(stateDir, 'local-1', 'flyd'));
    const { child, exited, apiUrl } = await launch(stateDir);
    try {
      const { apiToken } = JSON.parse(readFileSync(join(stateDir, 'secrets.json'), 'utf8'));
      const flaps = new FlapsClient(apiUrl, apiToken);
      const [machine] = await flaps.listMachines('demo');
      const probe = [
        'echo "console.log(typeof require)" > probe.js && node probe.js',
        `node -e "try { require.resolve('leaked'); console.log('leaked') } catch { console.log('not found') }"`,
      ].join(' && ');
      const ran = await flaps.call<{ stdout: string; stderr: string; exit_code: number }>(
        'POST',
        `/v1/apps/demo/machines/${machine!.id}/exec`,
        { command: ['sh', '-c', probe] },
      );
      expect(ran.exit_code, ran.stderr).toBe(0);
      expect(ran.stdout).toBe('function\nnot found\n'); // a CommonJS script; no package found
      expect(existsSync(join(rootsDir, machine!.id))).toBe(true);
    } finally {
      child.kill('SIGINT');
      await exited;
      unmountUnder(rootsDir); // flyd unmounts them as it exits: this is for a flyd that failed to
      rmSync(project, { recursive: true, force: true });
      rmSync(rootsDir, { recursive: true, force: true });
    }
  });

  // As root, flyd runs each machine as a user of its own (see flyd's README): from inside a demo
  // machine, nothing of the fleet's own state on this host can be read or reached.
  it.runIf(root)("keeps the host's fleet state from its machines", async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'fleet-launcher-'));
    chmodSync(stateDir, 0o711); // as a checkout's .fleet is: other users may pass through
    const { child, exited, apiUrl } = await launch(stateDir);
    try {
      const { apiToken } = JSON.parse(readFileSync(join(stateDir, 'secrets.json'), 'utf8'));
      const flaps = async (method: string, path: string, body?: unknown) => {
        const response = await fetch(`${apiUrl}${path}`, {
          method,
          headers: { authorization: `Bearer ${apiToken}`, 'content-type': 'application/json' },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        return (await response.json()) as Record<string, unknown>;
      };
      const [machine] = (await flaps('GET', '/v1/apps/demo/machines')) as unknown as {
        id: string;
      }[];
      const host = join(stateDir, 'local-1');
      const paths = [
        join(stateDir, 'secrets.json'),
        join(stateDir, 'fleet.key'),
        join(host, 'corrosion.db'),
        join(host, 'corrosion.db-wal'),
        join(host, 'flaps-images'),
        join(host, 'logs'),
        join(host, 'fly-proxy'),
        join(host, 'flyd', 'flyd.db'),
      ];
      for (const path of paths) {
        const tried = await flaps('POST', `/v1/apps/demo/machines/${machine?.id}/exec`, {
          command: ['sh', '-c', `id -u; if [ -d ${path} ]; then ls ${path}; else cat ${path}; fi`],
        });
        expect(Number(String(tried.stdout).split('\n')[0]), path).toBeGreaterThan(0);
        expect(tried.exit_code, `${path}: ${JSON.stringify(tried)}`).not.toBe(0);
        expect(String(tried.stderr), path).toMatch(/Permission denied/);
      }
    } finally {
      child.kill('SIGINT');
      await exited;
    }
  });
});

/** Runs the built launcher on `stateDir` with free ports; resolves once the fleet is up. */
async function launch(stateDir: string) {
  const child = spawn(
    process.execPath,
    [
      launcher,
      '--state-dir',
      stateDir,
      '--proxy-listen',
      '127.0.0.1:0',
      '--api-listen',
      '127.0.0.1:0',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const output: string[] = [];
  child.stderr.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  let apiUrl = '';
  const proxyUrl = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      output.push(line);
      apiUrl = /Machines API\s+(http:\/\/[\d.:]+)/.exec(line)?.[1] ?? apiUrl;
      const match = /curl -s -H 'Host: demo\.localhost' (http:\/\/[\d.:]+)\//.exec(line);
      if (match) resolve(match[1]!);
    });
    void exited.then((code) => reject(new Error(`launcher exited ${code}: ${output.join('\n')}`)));
  });
  return { child, exited, output, proxyUrl, apiUrl };
}
