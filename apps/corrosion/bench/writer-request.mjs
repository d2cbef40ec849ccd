// The writer's share of a write, measured alone: CPU per single-row `POST /v1/transactions` on one
// agent (no peers), sent back to back and paced at `rate` a second — one agent's share of 500
// writes/s spread over 20, so the process sleeps between requests as it does in the convergence
// run. Beside it, in the same run, a bare node:http server answering the same request with a
// fixed body: what any Node server pays per request here, before fastify, SQLite or broadcast.
// On this machine a request that wakes a sleeping process costs several times one that arrives
// while it is busy, for the bare server as for the agent (caches and predictors gone cold), so
// the paced figures are the ones the 20-agent run's writer share compares with.
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { procStat } from '@fleet/service';
import { startAgent, transact } from './convergence.mjs';

const answer = JSON.stringify({
  results: [{ rows_affected: 1, time: 0.00002 }],
  time: 0.0001,
  version: 1,
  actor_id: '0123456789abcdef0123456789abcdef',
});

/** The baseline: reads the body, parses it, answers the agent's answer's shape. */
function serveBare() {
  const server = http.createServer((request, response) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk) => {
      body += chunk;
    });
    request.on('end', () => {
      JSON.parse(body);
      response.writeHead(200, {
        'content-type': 'application/json; charset=utf-8',
        'content-length': Buffer.byteLength(answer),
      });
      response.end(answer);
    });
  });
  server.listen(0, '127.0.0.1', () => process.send(server.address().port));
}

async function startBare() {
  const child = fork(fileURLToPath(import.meta.url), ['serve-bare'], { stdio: 'ignore' });
  const port = await new Promise((resolve, reject) => {
    const exited = () => reject(new Error('the bare server exited before listening'));
    child.once('exit', exited);
    child.once('message', (listening) => {
      child.off('exit', exited);
      resolve(listening);
    });
  });
  return { url: `http://127.0.0.1:${port}`, pid: child.pid, stop: () => child.kill() };
}

/** CPU microseconds per request to `url` from process `pid`: back to back, then paced. */
async function perRequest(url, pid, rate, seconds) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  let id = 0;
  const write = async () => {
    const statement = "INSERT INTO machines (id, app, state) VALUES (?, 'bench', 'started')";
    if (!(await transact({ api: url }, agent, [[statement, [`r-${id++}`]]]))) {
      throw new Error(`${url} refused a write`);
    }
  };
  const cpuMs = () => procStat(pid).cpuMs;
  try {
    for (let i = 0; i < 500; i++) await write(); // warm-up: compiled, caches of SQLite filled
    const count = rate * seconds;
    let from = cpuMs();
    for (let i = 0; i < 3000; i++) await write();
    const backToBack = ((cpuMs() - from) * 1000) / 3000;
    await sleep(1_000);
    from = cpuMs();
    for (let i = 0; i < count; i++) {
      await sleep(1000 / rate);
      await write();
    }
    const paced = ((cpuMs() - from) * 1000) / count;
    return { backToBack, paced };
  } finally {
    agent.destroy();
  }
}

export async function measureWriterRequest({ rate = 25, seconds = 12 } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-writer-request-'));
  let node;
  let bare;
  try {
    node = await startAgent(dir, []);
    bare = await startBare();
    const agent = await perRequest(node.api, node.agent.child.pid, rate, seconds);
    const baseline = await perRequest(bare.url, bare.pid, rate, seconds);
    return { rate, agent, bare: baseline };
  } finally {
    bare?.stop();
    await node?.agent.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'serve-bare') serveBare();
else if (import.meta.url === `file://${process.argv[1]}`) {
  const [rate = 25, seconds = 12] = process.argv.slice(2).map(Number);
  console.log(await measureWriterRequest({ rate, seconds }));
}
