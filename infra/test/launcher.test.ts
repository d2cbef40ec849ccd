import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { packImage } from '@fleet/images';
import { sampleImagesDir } from '@fleet/sample-images';
import { describe, expect, it } from 'vitest';
import { getThroughProxy } from '../src/launcher/demo.js';
import { isAlive, pidsWithEnv } from './processes.js';

const launcher = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'launcher', 'main.js');

// What `npm start` runs, run as a user would: the built launcher uploads the sample images and brings
// up the demo app with two machines running the `hello` image by its digest, prints a working
// curl line, and on Ctrl-C (SIGINT) takes everything down, exit 0.
describe('the fleet launcher (npm start)', () => {
  it('serves the demo app and shuts down cleanly on SIGINT', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'fleet-launcher-'));
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
    const proxyUrl = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout }).on('line', (line) => {
        output.push(line);
        const match = /curl -s -H 'Host: demo\.localhost' (http:\/\/[\d.:]+)\//.exec(line);
        if (match) resolve(match[1]!);
      });
      void exited.then((code) =>
        reject(new Error(`launcher exited ${code}: ${output.join('\n')}`)),
      );
    });
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
    expect(machinePids.filter(isAlive)).toEqual([]);
  });
});
