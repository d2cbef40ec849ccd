import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ServerProcess, startServerProcess } from '@fleet/service';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { machinePids } from './machine-processes.js';

const here = dirname(fileURLToPath(import.meta.url));
const env = { ...process.env, LOG_LEVEL: 'error' };
const hello = {
  image: 'hello',
  services: [{ internal_port: 8080, ports: [{ port: 80, handlers: ['http'] }] }],
};

// kill -9 flyd at different moments of a create and of a stop: after a restart on the same data
// directory every unfinished run resumes and completes, the machine ends in the state the
// operation was heading for, and exactly one process (or none) runs it.
describe('flyd killed mid-operation', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-crash-'));
  let corrosion: ServerProcess;
  let flyd: ServerProcess | undefined;
  const startFlyd = async () => {
    flyd = await startServerProcess({
      command: process.execPath,
      args: [
        join(here, '..', 'dist', 'main.js'),
        '--listen',
        '127.0.0.1:0',
        '--data-dir',
        join(dir, 'flyd'),
        '--corrosion-url',
        corrosion.urls.api!,
        '--token',
        't',
      ],
      listeners: ['api'],
      env,
    });
    return flyd.urls.api!;
  };
  const call = async (base: string, method: string, path: string, body?: unknown) => {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: {
        authorization: 'Bearer t',
        ...(body ? { 'content-type': 'application/json' } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
    }).catch(() => undefined); // the server may die under the call: that is the point
    return response
      ? { status: response.status, body: (await response.json()) as Record<string, unknown> }
      : undefined;
  };

  beforeAll(async () => {
    corrosion = await startServerProcess({
      command: process.execPath,
      args: [
        join(here, '..', '..', 'corrosion', 'dist', 'main.js'),
        'agent',
        '--db',
        join(dir, 'c.db'),
        '--api-addr',
        '127.0.0.1:0',
      ],
      listeners: ['api'],
      env,
    });
  });
  afterAll(async () => {
    await flyd?.stop();
    await corrosion.stop();
  });

  for (const delayMs of [0, 5, 15, 40]) {
    it(`finishes a create and a stop interrupted after ${delayMs} ms`, async () => {
      const id = randomBytes(7).toString('hex');
      let api = await startFlyd();
      void call(api, 'POST', '/v1/machines', { id, app: 'crash', config: hello });
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      flyd!.child.kill('SIGKILL');
      await flyd!.exited;
      api = await startFlyd();
      const created = await call(api, 'GET', `/v1/machines/${id}/wait?state=started&timeout=15`);
      if (created?.status === 404) return; // killed before the machine was recorded: nothing to finish
      expect(created?.status).toBe(200);
      expect(machinePids(id)).toHaveLength(1);

      void call(api, 'POST', `/v1/machines/${id}/stop`);
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      flyd!.child.kill('SIGKILL');
      await flyd!.exited;
      api = await startFlyd();
      const runs = (await call(api, 'GET', `/v1/machines/${id}/runs`))?.body as unknown as {
        status: string;
      }[];
      const deadline = Date.now() + 15_000;
      while (Date.now() < deadline) {
        const active = (await call(api, 'GET', '/v1/runs'))?.body as unknown as unknown[];
        if (active.length === 0) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(runs.every((run) => run.status !== 'failed')).toBe(true);
      const machine = (await call(api, 'GET', `/v1/machines/${id}`))?.body;
      expect(['started', 'stopped']).toContain(machine?.state);
      expect(machinePids(id)).toHaveLength(machine?.state === 'started' ? 1 : 0);
      await call(api, 'DELETE', `/v1/machines/${id}?kill=true`);
      await flyd!.stop();
    }, 60_000);
  }
});
