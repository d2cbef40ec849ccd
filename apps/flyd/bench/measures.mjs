import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { request } from 'undici';
import { domain, flyd, imagesDir } from './fleet.mjs';
import { timeEach } from './stats.mjs';

const hello = {
  image: 'hello',
  services: [{ internal_port: 8080, ports: [{ port: 80, handlers: ['http'] }] }],
};

const freePort = () =>
  new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });

/** Resolves once something accepts TCP connections on the port (the readiness flyd waits for). */
async function listening(port) {
  for (;;) {
    const accepted = await new Promise((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (accepted) return;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** The floor: spawn the hello image's command directly and wait until its port listens. */
export async function bareSpawn(count) {
  const image = JSON.parse(readFileSync(join(imagesDir, 'hello', 'image.json'), 'utf8'));
  const [command, ...args] = image.cmd;
  return timeEach(count, async () => {
    const port = await freePort();
    const child = spawn(command, args, {
      cwd: join(imagesDir, 'hello'),
      env: { PATH: process.env.PATH, PORT: String(port) },
      stdio: 'ignore',
      detached: true,
    });
    await listening(port);
    process.kill(-child.pid, 'SIGKILL');
  });
}

let sequence = 0;

export async function createToStarted(api, count) {
  const ids = [];
  const samples = await timeEach(count, async () => {
    const machine = await flyd(api, 'POST', '/v1/machines', { app: 'bench', config: hello });
    await flyd(api, 'GET', `/v1/machines/${machine.id}/wait?state=started&timeout=30`);
    ids.push(machine.id);
  });
  return { samples, ids };
}

export async function stoppedToStarted(api, id, count) {
  const samples = [];
  for (let index = 0; index < count; index++) {
    await flyd(api, 'POST', `/v1/machines/${id}/stop`);
    const started = performance.now();
    await flyd(api, 'POST', `/v1/machines/${id}/start`);
    samples.push(performance.now() - started);
  }
  return samples;
}

/** `count` creates, `concurrency` at a time: rate of answered creates and of started machines. */
export async function bulkCreate(api, count, concurrency) {
  const ids = [];
  const started = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next++;
      const machine = await flyd(api, 'POST', '/v1/machines', { app: 'bulk', config: hello });
      ids.push(machine.id);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const createdMs = performance.now() - started;
  await Promise.all(
    ids.map((id) => flyd(api, 'GET', `/v1/machines/${id}/wait?state=started&timeout=60`)),
  );
  const startedMs = performance.now() - started;
  return {
    ids,
    createdPerSecond: (count / createdMs) * 1000,
    startedPerSecond: (count / startedMs) * 1000,
  };
}

/** Create (in a new app each time) → the first request through fly-proxy the machine answers. */
export async function createToRoutable(api, proxy, count) {
  const ids = [];
  const samples = await timeEach(count, async (index) => {
    const app = `route${index}x${sequence++}`;
    const machine = await flyd(api, 'POST', '/v1/machines', { app, config: hello });
    ids.push(machine.id);
    for (;;) {
      const answer = await request(proxy, {
        headers: { host: `${app}.${domain}` },
        headersTimeout: 5_000,
        bodyTimeout: 5_000,
      }).catch(() => undefined);
      const body = answer ? await answer.body.text() : '';
      if (answer?.statusCode === 200 && body.includes(machine.id)) return;
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  });
  return { samples, ids };
}
