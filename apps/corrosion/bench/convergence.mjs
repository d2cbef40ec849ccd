// Convergence: N agents as processes on this machine, writes at a steady rate on random nodes;
// the time from a write's commit on its writer to its row being visible on every other node
// (p50, p99), and the time to zero gaps everywhere once the writes stop.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServerProcess } from '@fleet/service';

const mainJs = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const schemaFile = fileURLToPath(new URL('./schema/machines.sql', import.meta.url));

async function startAgent(dir, bootstrap) {
  const keyFile = join(dir, 'fleet.key');
  writeFileSync(keyFile, 'bench-fleet-key-0123456789abcdef');
  const agent = await startServerProcess({
    command: process.execPath,
    args: [
      mainJs,
      'agent',
      '--db',
      join(dir, 'corrosion.db'),
      '--api-addr',
      '127.0.0.1:0',
      '--gossip-addr',
      '127.0.0.1:0',
      '--gossip-key-file',
      keyFile,
      '--schema',
      schemaFile,
      '--bootstrap',
      bootstrap.join(','),
    ],
    listeners: ['api', 'gossip'],
    env: { ...process.env, LOG_LEVEL: 'error' },
    logFile: join(dir, 'agent.log'), // what an agent said before it died, if one does
    startTimeoutMs: 30_000,
  });
  return { agent, api: agent.urls.api, gossip: agent.urls.gossip.replace('udp://', '') };
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux). */
function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks
}
const clusterCpu = (nodes) =>
  nodes.reduce((sum, node) => sum + cpuSeconds(node.agent.child.pid), 0);

/** A node's health; a failed poll (a reset connection under load) counts as not there yet. */
const health = async (node) => {
  try {
    return (await (await fetch(`${node.api}/v1/health`)).json()).response;
  } catch {
    return { members: 0, gaps: Number.POSITIVE_INFINITY };
  }
};
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const percentile = (sorted, p) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

/** Follows /v1/updates/machines on a node, recording when each primary key first shows up. */
function follow(node, seen) {
  const controller = new AbortController();
  (async () => {
    const response = await fetch(`${node.api}/v1/updates/machines`, {
      method: 'POST',
      signal: controller.signal,
    });
    let buffered = '';
    for await (const chunk of response.body.pipeThrough(new TextDecoderStream())) {
      buffered += chunk;
      const lines = buffered.split('\n');
      buffered = lines.pop();
      const now = performance.now();
      for (const line of lines) {
        const id = JSON.parse(line).notify[1][0];
        if (!seen.has(id)) seen.set(id, now);
      }
    }
  })().catch(() => undefined);
  return controller;
}

export async function measureConvergence({ nodes: count = 20, rate = 500, seconds = 10 } = {}) {
  const root = mkdtempSync(join(tmpdir(), 'fleet-convergence-'));
  const nodes = [
    await startAgent(mkdirSync(join(root, '0'), { recursive: true }) ?? join(root, '0'), []),
  ];
  for (let i = 1; i < count; i++) {
    nodes.push(
      await startAgent(
        mkdirSync(join(root, String(i)), { recursive: true }) ?? join(root, String(i)),
        [nodes[0].gossip],
      ),
    );
  }
  try {
    while ((await Promise.all(nodes.map(health))).some((h) => h.members < count - 1))
      await sleep(200);
    const seen = nodes.map(() => new Map());
    const streams = nodes.map((node, i) => follow(node, seen[i]));
    await sleep(500);
    const writes = []; // [id, writer index, sent at]
    const cpuBefore = clusterCpu(nodes);
    const started = performance.now();
    const total = rate * seconds;
    let failed = 0;
    const inflight = [];
    for (let i = 0; i < total; i++) {
      const due = started + (i / rate) * 1000;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
      const writer = Math.floor(Math.random() * count);
      const id = `w-${i}`;
      writes.push([id, writer, performance.now()]);
      inflight.push(
        fetch(`${nodes[writer].api}/v1/transactions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify([
            ["INSERT INTO machines (id, app, state) VALUES (?, 'bench', 'started')", [id]],
          ]),
        })
          .then((response) => {
            if (!response.ok) failed++;
            return response.arrayBuffer();
          })
          // A write refused by an overloaded agent (a reset connection) is counted, not fatal.
          .catch(() => {
            failed++;
          }),
      );
    }
    await Promise.all(inflight);
    const stopped = performance.now();
    const achievedRate = total / ((stopped - started) / 1000);
    let convergedMs;
    for (;;) {
      const healths = await Promise.all(nodes.map(health));
      const everywhere = seen.every((map) => map.size >= total - failed);
      if (everywhere && healths.every((h) => h.gaps === 0)) {
        convergedMs = performance.now() - stopped;
        break;
      }
      if (performance.now() - stopped > 120_000) throw new Error('no convergence within 120 s');
      await sleep(50);
    }
    const cpuSeconds = clusterCpu(nodes) - cpuBefore;
    const cpuMsPerWrite = (cpuSeconds * 1000) / total;
    const cores = cpuSeconds / ((performance.now() - started) / 1000);
    const latencies = [];
    for (const [id, writer, sentAt] of writes) {
      for (let n = 0; n < count; n++) {
        const seenAt = seen[n].get(id); // a failed write is seen nowhere
        if (n !== writer && seenAt !== undefined) latencies.push(seenAt - sentAt);
      }
    }
    latencies.sort((a, b) => a - b);
    for (const stream of streams) stream.abort();
    return {
      nodes: count,
      rate,
      achievedRate,
      writes: total,
      failed,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      max: latencies.at(-1),
      convergedMs,
      cpuMsPerWrite,
      cores,
    };
  } finally {
    await Promise.all(nodes.map((node) => node.agent.stop()));
  }
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(await measureConvergence());
