// Convergence: N agents as processes on this machine, writes at a steady rate on random nodes;
// the time from a write's commit on its writer to its row being visible on every other node
// (p50, p99), and the time to zero gaps everywhere once the writes stop.
// CORROSION_PROFILE_DIR=<dir> writes a CPU profile (--cpu-prof) of one agent there: the one of
// index CORROSION_PROFILE_AGENT (default 1; node i writes with weight i + 1, so the last writes most).
// CORROSION_AGENT_ARGS adds options to every agent's command line (e.g. `--sync-interval-ms 5000`).
// CONVERGENCE_MONITOR=1 prints the cluster's replication state each second of the measured writes.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { procStat, startServerProcess } from '@fleet/service';

const mainJs = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const schemaFile = fileURLToPath(new URL('./schema/machines.sql', import.meta.url));

export async function startAgent(dir, bootstrap, profiled = false) {
  const keyFile = join(dir, 'fleet.key');
  writeFileSync(keyFile, 'bench-fleet-key-0123456789abcdef');
  const profileDir = process.env.CORROSION_PROFILE_DIR;
  const agent = await startServerProcess({
    command: process.execPath,
    args: [
      ...(profiled && profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []),
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
      ...(process.env.CORROSION_AGENT_ARGS?.split(' ').filter(Boolean) ?? []),
    ],
    listeners: ['api', 'gossip'],
    env: { ...process.env, LOG_LEVEL: 'error' },
    logFile: join(dir, 'agent.log'), // what an agent said before it died, if one does
    startTimeoutMs: 120_000, // 20 agents starting on a loaded machine
  });
  return { agent, api: agent.urls.api, gossip: agent.urls.gossip.replace('udp://', '') };
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux). */
const cpuSeconds = (pid) => procStat(pid).cpuMs / 1000;
const clusterCpu = (nodes) =>
  nodes.reduce((sum, node) => sum + cpuSeconds(node.agent.child.pid), 0);

/**
 * CPU seconds the hypervisor gave to others while this machine's CPUs wanted to run, all CPUs
 * (/proc/stat's steal, in USER_HZ ticks of 10 ms). A run that falls behind with much of it was
 * stalled from outside: its p99 says little about the agents.
 */
const stealSeconds = () => Number(readFileSync('/proc/stat', 'utf8').split(/\s+/, 9)[8]) / 100;

/**
 * Each write's CPU split into its writer's share and one receiver's. Every node both writes and
 * receives: node i spent y_i = writer * written_i + receiver * (total - written_i) beyond its idle
 * work (SWIM, sync: its CPU rate in a quiet spell before the writes, for as long as the writes
 * took). Writers are drawn with weights 1..N, so the nodes' counts spread from a few to many
 * (uniform draws left them nearly equal and the fitted slope swung from run to run); a line
 * fitted through (written_i, y_i) has slope writer - receiver and intercept receiver * total.
 */
function splitPerWrite(spent, written, total) {
  const n = spent.length;
  const xMean = written.reduce((sum, x) => sum + x, 0) / n;
  const yMean = spent.reduce((sum, y) => sum + y, 0) / n;
  let covariance = 0;
  let variance = 0;
  for (let i = 0; i < n; i++) {
    covariance += (written[i] - xMean) * (spent[i] - yMean);
    variance += (written[i] - xMean) ** 2;
  }
  const slope = covariance / variance;
  const receiver = (yMean - slope * xMean) / total;
  return { writerMs: (slope + receiver) * 1000, receiverMs: receiver * 1000 };
}

/** A writer index drawn with weight i + 1 for node i (see splitPerWrite). */
function weightedWriter(count) {
  let draw = Math.random() * ((count * (count + 1)) / 2);
  for (let i = 0; i < count; i++) {
    draw -= i + 1;
    if (draw < 0) return i;
  }
  return count - 1;
}

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

/**
 * Follows /v1/updates/machines on a node, recording when each primary key first shows up. The
 * bench shares the machine with the agents, so its reading is kept light: node:http, raw bytes,
 * the id found by its prefix rather than each line parsed as JSON (20 streams at 500 writes/s
 * are 10,000 lines a second).
 */
export function follow(node, seen) {
  const request = http.request(`${node.api}/v1/updates/machines`, { method: 'POST' });
  request.on('response', (response) => {
    let buffered = '';
    response.setEncoding('latin1');
    response.on('data', (chunk) => {
      buffered += chunk;
      const now = performance.now();
      let from = 0;
      for (let end = buffered.indexOf('\n'); end >= 0; end = buffered.indexOf('\n', from)) {
        const start = buffered.indexOf('"w-', from);
        if (start >= 0 && start < end) {
          const id = buffered.slice(start + 1, buffered.indexOf('"', start + 1));
          if (!seen.has(id)) seen.set(id, now);
        }
        from = end + 1;
      }
      buffered = buffered.slice(from);
    });
    response.on('error', () => undefined);
  });
  request.on('error', () => undefined);
  request.end();
  return { abort: () => request.destroy() };
}

/**
 * One line of the cluster's replication state (CONVERGENCE_MONITOR=1, each second of the
 * measured writes): the worst apply lag and p99 of any node, and across nodes the changesets
 * waiting to apply, those sync has carried so far, the gaps and the broadcast queues. A run
 * that falls behind shows here when and how: lag first, then sync carrying what broadcast had
 * not yet delivered.
 */
async function monitorLine(nodes) {
  const states = await Promise.all(
    nodes.map(async (node) => {
      try {
        return (await (await fetch(`${node.api}/v1/status`)).json()).replication;
      } catch {
        return undefined; // an agent too busy to answer within the second is left out
      }
    }),
  );
  const seen = states.filter(Boolean);
  const sum = (field) => seen.reduce((total, state) => total + state[field], 0);
  const max = (field) => Math.max(...seen.map((state) => state[field]));
  // Members some agent holds not alive (suspect or down) although every agent is running.
  const doubted = seen.reduce(
    (total, state) => total + state.members.filter((member) => member.state !== 'alive').length,
    0,
  );
  console.log(
    `${new Date().toISOString().slice(11, 19)} lag max ${max('apply_lag_ms')} ms, p99 max ${max('apply_lag_p99_ms')} ms; queued ${sum('apply_queue')}, by sync ${sum('sync_changesets_received')}, gaps ${sum('gaps')}, broadcast queue ${sum('broadcast_queue')}, unread max ${Math.round(max('gossip_unread_bytes') / 1024)} KB, members doubted ${doubted} (${seen.length} agents answered)`,
  );
}

/** POSTs a transaction over a kept-alive connection; resolves to whether it was taken. */
export function transact(node, agent, statements) {
  const body = JSON.stringify(statements);
  return new Promise((resolve) => {
    const request = http.request(`${node.api}/v1/transactions`, {
      method: 'POST',
      agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    });
    request.on('response', (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode === 200));
      response.on('error', () => resolve(false));
    });
    // A write refused by an overloaded agent (a reset connection) is counted, not fatal.
    request.on('error', () => resolve(false));
    request.end(body);
  });
}

/**
 * The clients' connections: kept alive and shared by the warm-up and the measured writes, as an
 * application's pool would be. Counts the connections it opens: a write that finds every
 * connection to its node busy opens another, which costs both ends far more than a request.
 */
function clientPool() {
  const agent = new http.Agent({ keepAlive: true });
  const pool = { agent, opened: 0 };
  const connect = agent.createConnection.bind(agent);
  agent.createConnection = (...args) => {
    pool.opened++;
    return connect(...args);
  };
  return pool;
}

/**
 * Writes `rate` single-row transactions a second for `seconds` on random nodes (weighted, see
 * splitPerWrite), ids `${prefix}${i}`, over `pool`'s connections; resolves when every answer is
 * in. Behind schedule, the writes due go out in one burst, their answers read after it: a burst
 * finds its node's connections busy and opens more, which the warm-up's pool then holds (a fresh
 * pool for the measured writes opened 435 of them in session 24, the warm one none).
 */
async function writeSteadily(nodes, rate, seconds, prefix, pool) {
  const writes = []; // [id, writer index, sent at]
  let failed = 0;
  const inflight = [];
  const started = performance.now();
  for (let i = 0; i < rate * seconds; i++) {
    const due = started + (i / rate) * 1000;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    const writer = weightedWriter(nodes.length);
    const id = `${prefix}${i}`;
    writes.push([id, writer, performance.now()]);
    inflight.push(
      transact(nodes[writer], pool.agent, [
        ["INSERT INTO machines (id, app, state) VALUES (?, 'bench', 'started')", [id]],
      ]).then((taken) => {
        if (!taken) failed++;
      }),
    );
  }
  await Promise.all(inflight);
  return { writes, failed, started, stopped: performance.now() };
}

export async function measureConvergence({
  nodes: count = 20,
  rate = 500,
  seconds = 10,
  warmupSeconds = 20,
} = {}) {
  const root = mkdtempSync(join(tmpdir(), 'fleet-convergence-'));
  const nodes = [];
  const folder = (i) =>
    mkdirSync(join(root, String(i)), { recursive: true }) ?? join(root, String(i));
  const pool = clientPool();
  try {
    // Inside the try: an agent that fails to start stops the ones already running.
    const profiled = Number(process.env.CORROSION_PROFILE_AGENT ?? 1);
    nodes.push(await startAgent(folder(0), [], profiled === 0));
    for (let i = 1; i < count; i++)
      nodes.push(await startAgent(folder(i), [nodes[0].gossip], i === profiled));
    while ((await Promise.all(nodes.map(health))).some((h) => h.members < count - 1))
      await sleep(200);
    const seen = nodes.map(() => new Map());
    const streams = nodes.map((node, i) => follow(node, seen[i]));
    await sleep(500);
    const quietFrom = performance.now();
    const cpuQuiet = nodes.map((node) => cpuSeconds(node.agent.child.pid));
    await sleep(2_000);
    const quietSeconds = (performance.now() - quietFrom) / 1000;
    const idlePerSecond = nodes.map(
      (node, i) => (cpuSeconds(node.agent.child.pid) - cpuQuiet[i]) / quietSeconds,
    );
    // Warm-up: the same load, not measured (its ids are not followed), so the figures are the
    // agents' steady state, not 20 processes compiling their hot paths and backing off syncs.
    await writeSteadily(nodes, rate, warmupSeconds, 'warm-', pool);
    await sleep(1_000);
    const nodeCpuBefore = nodes.map((node) => cpuSeconds(node.agent.child.pid));
    const cpuBefore = clusterCpu(nodes);
    const benchCpuBefore = process.cpuUsage();
    const stealBefore = stealSeconds();
    // The bench's own longest wait for its event loop: it does little, so a long one is the
    // host stalling (or the agents starving it), and every write then waits as long.
    const benchDelay = monitorEventLoopDelay({ resolution: 10 });
    benchDelay.enable();
    const total = rate * seconds;
    const monitor = process.env.CONVERGENCE_MONITOR
      ? setInterval(() => monitorLine(nodes), 1000)
      : undefined;
    const openedBefore = pool.opened;
    const { writes, failed, started, stopped } = await writeSteadily(
      nodes,
      rate,
      seconds,
      'w-',
      pool,
    );
    const connectionsOpened = pool.opened - openedBefore;
    clearInterval(monitor);
    benchDelay.disable();
    const achievedRate = total / ((stopped - started) / 1000);
    let convergedMs = null;
    let unconverged; // what was still missing when the bench gave up
    for (;;) {
      const healths = await Promise.all(nodes.map(health));
      const everywhere = seen.every((map) => map.size >= total - failed);
      if (everywhere && healths.every((h) => h.gaps === 0)) {
        convergedMs = performance.now() - stopped;
        break;
      }
      if (performance.now() - stopped > 120_000) {
        unconverged = {
          gaps: healths.map((h) => h.gaps),
          seen: seen.map((map) => map.size),
          expected: total - failed,
        };
        break;
      }
      await sleep(50);
    }
    const elapsedSeconds = (performance.now() - started) / 1000;
    const written = nodes.map((_, i) => writes.filter(([, writer]) => writer === i).length);
    const spent = nodes.map(
      (node, i) =>
        cpuSeconds(node.agent.child.pid) - nodeCpuBefore[i] - idlePerSecond[i] * elapsedSeconds,
    );
    const split = splitPerWrite(spent, written, total);
    const clusterSeconds = clusterCpu(nodes) - cpuBefore;
    const cpuMsPerWrite = (clusterSeconds * 1000) / total;
    const cores = clusterSeconds / ((performance.now() - started) / 1000);
    const benchCpu = process.cpuUsage(benchCpuBefore);
    const benchCores = (benchCpu.user + benchCpu.system) / 1000 / (performance.now() - started);
    const stealCores = (stealSeconds() - stealBefore) / elapsedSeconds;
    const latencies = [];
    for (const [id, writer, sentAt] of writes) {
      for (let n = 0; n < count; n++) {
        const seenAt = seen[n].get(id); // a failed write is seen nowhere
        if (n !== writer && seenAt !== undefined) latencies.push(seenAt - sentAt);
      }
    }
    latencies.sort((a, b) => a - b);
    // What sync carried, cluster-wide: changesets broadcast did not bring in time (repairs and
    // duplicates alike; each write is one changeset, received by every other node).
    const statuses = await Promise.all(
      nodes.map(async (node) => (await (await fetch(`${node.api}/v1/status`)).json()).replication),
    );
    const bySync = statuses.reduce((sum, status) => sum + status.sync_changesets_received, 0);
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
      unconverged,
      cpuMsPerWrite,
      writerCpuMsPerWrite: split.writerMs,
      receiverCpuMsPerWrite: split.receiverMs,
      cores,
      idleCores: idlePerSecond.reduce((sum, rate) => sum + rate, 0),
      benchCores, // this process: the writes sent and the update streams read
      stealCores, // taken by the hypervisor while the CPUs wanted to run
      benchStallMs: benchDelay.max / 1e6, // the bench's longest event-loop delay while writing
      syncShare: bySync / (total * (count - 1)), // changesets received by sync per delivery
      connectionsOpened, // by the clients during the measured writes (their pool was warm)
    };
  } finally {
    pool.agent.destroy();
    await Promise.all(nodes.map((node) => node.agent.stop()));
    rmSync(root, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [nodes = 20, rate = 500, seconds = 10, warmupSeconds = 20] = process.argv
    .slice(2)
    .map(Number);
  console.log(await measureConvergence({ nodes, rate, seconds, warmupSeconds }));
}
