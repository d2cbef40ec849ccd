#!/usr/bin/env node
// HTTP/1.1 keep-alive through fly-proxy beside nginx (1 worker) and node-http-proxy (1 process),
// each forwarding to the same machine in the same run, the machine alone as the ceiling.
// One hop (client -> proxy -> machine), then two hops (client -> edge -> second proxy ->
// machine: nginx chained twice; a fly-proxy edge through a worker's backhaul fly-proxy). Load
// from wrk (-t1 -c50), each subject warmed up first. Prints req/s, p50, p99, the proxies' CPU
// per 10k requests, and the ratios against issue 11's targets (one hop: at least 0.6x nginx's
// requests per second and 2x node-http-proxy's, p99 within 2x nginx's; two hops: at least
// 0.35x nginx chained twice). Installs Debian's wrk and nginx-light when missing (as root).
// Then latency at a fixed rate (open loop, bench/fixed-rate.mjs) through each one-hop subject,
// and h2 over TLS (h2load, nghttp2-client) through nginx and fly-proxy's TLS listener. Last,
// one hop with 2 workers each (nginx `worker_processes 2`, node-http-proxy and fly-proxy as 2
// processes accepting on one port, bench/fly-proxy-workers.mjs) under wrk -t2, beside two floors
// of what Node allows (bench/floor-lean-http.mjs, bench/floor-byte-relay.mjs) and the least a proxy
// doing issue 11's per-request work costs (bench/floor-complete-http.mjs).
// Needs `npm run build`. Usage: node bench/http.mjs [seconds=10] [connections=50] [rate=3000]
// [parts=one,rate,two,h2,workers] (the parts to run) [turns=4] (the wrk subjects are loaded in
// that many rotating turns of seconds/turns each, see measure()). FLY_PROXY_DIST=<dir> runs another build of
// fly-proxy (say, the previous commit's, for a before/after in one sitting);
// FLY_PROXY_NODE_ARGS='--cpu-prof --cpu-prof-dir=<dir>' profiles every fly-proxy process (Node
// refuses --cpu-prof in NODE_OPTIONS).
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { CorrosionClient } from '@fleet/corrosion-client';
import { startServerProcess } from '@fleet/service';
import { request } from 'undici';
import { fixedRate } from './fixed-rate.mjs';
import { cpuMs, ensureTools, startNginx } from './nginx.mjs';

const seconds = Number(process.argv[2] ?? 10);
const connections = Number(process.argv[3] ?? 50);
const fixedRateRps = Number(process.argv[4] ?? 3_000);
const parts = new Set((process.argv[5] ?? 'one,rate,two,h2,workers').split(','));
const turns = Number(process.argv[6] ?? 4);
const turnSeconds = Math.max(1, Math.round(seconds / turns));
const here = dirname(fileURLToPath(import.meta.url));
const require = (await import('node:module')).createRequire(import.meta.url);
const corrosionMain = require.resolve('@fleet/corrosion/dist/main.js');
const proxyMain = join(process.env.FLY_PROXY_DIST ?? join(here, '..', 'dist'), 'main.js');
const host = 'bench.fleet.test';
const proxyNodeArgs = (process.env.FLY_PROXY_NODE_ARGS ?? '').split(' ').filter(Boolean);

ensureTools(['wrk', 'nginx', 'h2load']);
const dir = mkdtempSync(join(tmpdir(), 'fleet-proxy-bench-'));
const stops = [];
try {
  const backend = await child(process.execPath, [join(here, 'backend.mjs')]);
  stops.push(backend.stop);
  const nginx = await startProxyingNginx(backend.port, 'one');
  const flyProxy = await startFlyProxies(backend.port);
  const oneHop = {
    machine: { url: `http://127.0.0.1:${backend.port}`, pids: [backend.pid] },
    nginx,
    'node-http-proxy': await startNodeSubject('node-http-proxy.mjs', backend.port),
    'fly-proxy': flyProxy.oneHop,
  };
  // Two hops: an edge in front of a second proxy in front of the machine (nginx chained twice;
  // a fly-proxy edge through a worker's backhaul fly-proxy). CPU counts both processes.
  const chained = await startProxyingNginx(Number(new URL(nginx.url).port), 'two');
  const twoHops = {
    'nginx x2': { url: chained.url, pids: [chained.pids[0], nginx.pids[0]] },
    'fly-proxy x2': flyProxy.twoHops,
  };
  if (parts.has('one')) {
    const results = measure({ ...oneHop, ...(await startFloors(backend.port, 1)) });
    report('one hop', results, 'nginx', true);
    reportFloors(results);
  }
  if (parts.has('rate')) await reportFixedRate(oneHop);
  if (parts.has('two'))
    report('two hops (edge -> second proxy -> machine)', measure(twoHops), 'nginx x2', false);
  if (parts.has('h2')) {
    const nginxH2 = await startTlsNginx(backend.port);
    reportH2({ nginx: nginxH2, 'fly-proxy': flyProxy.tls });
  }
  if (parts.has('workers')) {
    const twoWorkers = {
      machine: oneHop.machine,
      nginx: await startProxyingNginx(backend.port, 'workers', 2),
      'node-http-proxy': await startNodeSubject('node-http-proxy.mjs', backend.port, 2),
      'fly-proxy': await startFlyProxyWorkers(flyProxy.corrosionUrl, 2),
      ...(await startFloors(backend.port, 2)),
    };
    const results = measure(twoWorkers, 2);
    report('one hop, 2 workers each', results, 'nginx', true, 2);
    reportFloors(results);
  }
} finally {
  for (const stop of stops.reverse()) await stop();
  rmSync(dir, { recursive: true, force: true });
}

/** nginx terminating TLS with h2 (a certificate of a fresh fleet CA) in front of the machine. */
async function startTlsNginx(backendPort) {
  const { FleetCa } = await import('../dist/tls/index.js');
  const { ca } = await FleetCa.generate();
  const issued = await ca.issue(host, 3_600_000);
  writeFileSync(join(dir, 'nginx-cert.pem'), issued.certPem);
  writeFileSync(join(dir, 'nginx-key.pem'), issued.keyPem, { mode: 0o600 });
  const nginx = await startNginx(
    dir,
    'h2',
    `listen LISTEN ssl http2;
    ssl_certificate ${join(dir, 'nginx-cert.pem')};
    ssl_certificate_key ${join(dir, 'nginx-key.pem')};
    location / {
      proxy_pass http://machine;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
    }`,
    `upstream machine { server 127.0.0.1:${backendPort}; keepalive 64; }`,
  );
  stops.push(nginx.stop);
  return { port: nginx.port, pids: [nginx.pid] };
}

/** h2 over TLS with h2load (10 connections, 10 streams each), nginx beside fly-proxy. */
function reportH2(subjects) {
  const requests = Math.max(2_000, seconds * 2_000);
  console.log(
    `\nh2 over TLS, h2load -n${requests} -c10 -m10 (after a warm-up), one core per process\n`,
  );
  console.log('subject            req/s   mean ms     sd ms   CPU ms per 10k');
  const results = {};
  for (const [name, subject] of Object.entries(subjects)) {
    const args = ['-c10', '-m10', `--connect-to=127.0.0.1:${subject.port}`, `https://${host}/`];
    execFileSync('h2load', ['-n2000', ...args], { encoding: 'utf8' }); // warm-up, issuance
    const cpuBefore = cpuMs(subject.pids[0]);
    const out = execFileSync('h2load', [`-n${requests}`, ...args], { encoding: 'utf8' });
    const cpu = cpuMs(subject.pids[0]) - cpuBefore;
    const failed = Number(/(\d+) failed/.exec(out)?.[1] ?? 0);
    if (failed > 0) throw new Error(`${name}: ${failed} failed h2 requests\n${out}`);
    const rate = Number(/finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(out)[1]);
    const [, , , mean, sd] = /time for request:\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)/.exec(out);
    results[name] = { rate };
    console.log(
      `${name.padEnd(16)} ${rate.toFixed(0).padStart(8)} ${mean.padStart(9)} ${sd.padStart(9)} ${((cpu / requests) * 10_000).toFixed(0).padStart(10)}`,
    );
  }
  console.log(
    `\nfly-proxy / nginx (h2 over TLS): ${(results['fly-proxy'].rate / results.nginx.rate).toFixed(2)}x req/s`,
  );
}

/** Latency at a fixed rate, each subject in turn (the machine alone as the floor). */
async function reportFixedRate(subjects) {
  console.log(`\nlatency at a fixed ${fixedRateRps} req/s, open loop, ${seconds}s (ms)\n`);
  console.log('subject             p50      p99    p99.9   failed');
  for (const [name, subject] of Object.entries(subjects)) {
    const r = await fixedRate(subject.url, subject.host ?? host, fixedRateRps, seconds);
    console.log(
      `${name.padEnd(16)} ${r.p50.toFixed(2).padStart(7)} ${r.p99.toFixed(2).padStart(8)} ${r.p999.toFixed(2).padStart(8)} ${String(r.failed).padStart(8)}`,
    );
  }
}

/**
 * Loads the subjects in turns: after a warm-up each, `turns` rounds in which every subject gets
 * `seconds / turns` of wrk in rotation, so the machine's drift over minutes (a third on these
 * shared hosts) falls on all of them alike instead of on whichever ran last. req/s is the mean of
 * a subject's turns, CPU per request their sum over its requests, p50 and p99 the median of its
 * turns' (wrk's percentiles cannot be merged exactly).
 */
function measure(subjects, threads = 1) {
  const entries = Object.entries(subjects);
  for (const [, subject] of entries) wrk(subject.url, 2, subject.host, threads); // pools, JIT
  const runs = Object.fromEntries(
    entries.map(([name, subject]) => [
      name,
      { cpu: 0, byPid: subject.pids.map(() => 0), turns: [] },
    ]),
  );
  for (let turn = 0; turn < turns; turn++) {
    for (const [name, subject] of entries) {
      const cpuBefore = subject.pids.map((pid) => cpuMs(pid));
      const run = wrk(subject.url, turnSeconds, subject.host, threads);
      subject.pids.forEach((pid, index) => {
        const used = cpuMs(pid) - cpuBefore[index];
        runs[name].byPid[index] += used;
        runs[name].cpu += used;
      });
      runs[name].turns.push(run);
    }
  }
  if (threads > 1) {
    // Workers sharing one listening socket get the connections the kernel gives each: a split
    // far from even leaves one worker's core short while the other waits.
    const splits = Object.entries(runs)
      .filter(([name]) => subjects[name].pids.length > 1)
      .map(
        ([name, run]) =>
          `${name} ${run.byPid.map((used) => Math.round((used / run.cpu) * 100)).join('/')}`,
      );
    console.log(`\nCPU split between processes, %: ${splits.join('; ')}`);
  }
  const results = {};
  for (const [name, { cpu, turns: done }] of Object.entries(runs)) {
    const requests = done.reduce((sum, run) => sum + run.requests, 0);
    results[name] = {
      rate: done.reduce((sum, run) => sum + run.rate, 0) / done.length,
      p50: median(done.map((run) => run.p50)),
      p99: median(done.map((run) => run.p99)),
      cpuPer10k: (cpu / requests) * 10_000,
    };
  }
  return results;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** Spawns a process that prints its port as its first line (and maybe more after it). */
async function child(command, args) {
  const process_ = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = [];
  const port = await new Promise((resolve, reject) => {
    createInterface({ input: process_.stdout }).on('line', (line) => {
      lines.push(line);
      if (lines.length === 1) resolve(Number(line));
    });
    process_.once('exit', (code) => reject(new Error(`${args[0]} exited ${code}`)));
  });
  const exited = new Promise((resolve) => process_.once('exit', resolve));
  return {
    port,
    /** The line after the port (a clustered child's pids), once printed. */
    get nextLine() {
      return lines[1];
    },
    pid: process_.pid,
    stop: async () => {
      process_.kill('SIGTERM');
      await exited;
    },
  };
}

/** nginx (`workers` worker processes) proxying to `backendPort`, keep-alive upstream. */
async function startProxyingNginx(backendPort, name, workers = 1) {
  const nginx = await startNginx(
    dir,
    name,
    `listen LISTEN;
    location / {
      proxy_pass http://machine;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $remote_addr;
    }`,
    `upstream machine { server 127.0.0.1:${backendPort}; keepalive 64; }`,
    workers,
  );
  stops.push(nginx.stop);
  const url = `http://127.0.0.1:${nginx.port}`;
  await ready(url);
  return { url, pids: nginx.pids };
}

/** What any proxy written for Node costs at the least, to run beside fly-proxy in the same run. */
async function startFloors(backendPort, workers) {
  return {
    'floor: complete HTTP': await startNodeSubject('floor-complete-http.mjs', backendPort, workers),
    'floor: lean HTTP': await startNodeSubject('floor-lean-http.mjs', backendPort, workers),
    'floor: relay': await startNodeSubject('floor-byte-relay.mjs', backendPort, workers),
  };
}

/** A Node subject of this folder (node-http-proxy, a floor) as `workers` processes. */
async function startNodeSubject(script, backendPort, workers = 1) {
  const proxy = await child(process.execPath, [
    join(here, script),
    String(backendPort),
    String(workers),
  ]);
  stops.push(proxy.stop);
  const url = `http://127.0.0.1:${proxy.port}`;
  await ready(url);
  return { url, pids: workers > 1 ? JSON.parse(proxy.nextLine) : [proxy.pid] };
}

/**
 * fly-proxy as `workers` processes on one port (bench/fly-proxy-workers.mjs), routing from the
 * same corrosion agent as the one-hop edge.
 */
async function startFlyProxyWorkers(corrosionUrl, workers) {
  const { freePort } = await import('./nginx.mjs');
  const port = await freePort(); // the workers share the primary's handle for it
  const launcher = spawn(
    process.execPath,
    [
      join(here, 'fly-proxy-workers.mjs'),
      String(workers),
      join(dir, 'proxy-workers'),
      proxyMain,
      ...['--listen', `127.0.0.1:${port}`, '--corrosion-url', corrosionUrl],
      ...['--domain', 'fleet.test', '--region', 'local'],
    ],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, LOG_LEVEL: 'error' } },
  );
  const exited = new Promise((resolve) => launcher.once('exit', resolve));
  stops.push(async () => {
    launcher.kill('SIGTERM');
    await exited;
  });
  const pids = await new Promise((resolve, reject) => {
    createInterface({ input: launcher.stdout }).once('line', (line) => resolve(JSON.parse(line)));
    launcher.once('exit', (code) => reject(new Error(`fly-proxy workers exited ${code}`)));
  });
  const url = `http://127.0.0.1:${port}`;
  await ready(url);
  return { url, pids };
}

/**
 * fly-proxy as a fleet runs it, routing from a real corrosion agent: an edge that dials the
 * machine (one hop), and an edge on host `edge-1` whose machine lives on host `worker-2`,
 * reached through that host's backhaul fly-proxy (two hops).
 */
async function startFlyProxies(backendPort) {
  const quiet = { ...process.env, LOG_LEVEL: 'error' };
  const keyFile = join(dir, 'fleet.key');
  writeFileSync(keyFile, 'bench-fleet-key-0123456789abcdef');
  const corrosion = await startServerProcess({
    command: process.execPath,
    args: [corrosionMain, 'agent', '--db', join(dir, 'c.db'), '--api-addr', '127.0.0.1:0'],
    listeners: ['api'],
    env: quiet,
  });
  stops.push(() => corrosion.stop());
  const proxy = async (args, listeners = ['proxy', 'admin']) => {
    const started = await startServerProcess({
      command: process.execPath,
      args: [
        ...proxyNodeArgs,
        ...[proxyMain, '--listen', '127.0.0.1:0', '--corrosion-url', corrosion.urls.api],
        ...['--domain', 'fleet.test', '--region', 'local', ...args],
        ...['--state-dir', join(dir, `proxy-${stops.length}`)],
      ],
      listeners,
      env: quiet,
    });
    stops.push(() => started.stop());
    return started;
  };
  const keyed = ['--fleet-key-file', keyFile];
  const tls = ['--tls-listen', '127.0.0.1:0', ...keyed];
  const ca = ['--ca-cert-file', join(dir, 'ca.pem'), '--ca-key-file', join(dir, 'ca.key')];
  const edge = await proxy([...tls, ...ca], ['proxy', 'admin', 'tls']);
  const backhaul = await proxy(['--mode', 'backhaul', '--host-id', 'worker-2', ...keyed]);
  const farEdge = await proxy(['--host-id', 'edge-1', ...keyed]);
  const client = new CorrosionClient({ url: corrosion.urls.api });
  const machine = (id, app, host) => [
    [
      'INSERT INTO machines (id, app, state, private_addr, region, host_id) VALUES (?, ?, ?, ?, ?, ?)',
      [id, app, 'started', `127.0.0.1:${backendPort}`, 'local', host],
    ],
    [
      'INSERT INTO services (machine_id, internal_port, app, ports) VALUES (?, ?, ?, ?)',
      [id, 8080, app, JSON.stringify([{ port: 80, handlers: ['http'] }])],
    ],
  ];
  await client.transaction([
    "INSERT INTO apps (name) VALUES ('bench')",
    ...machine('bench-m1', 'bench', ''),
    "INSERT INTO hosts (id, region, role) VALUES ('edge-1', 'local', 'edge')",
    [
      'INSERT INTO hosts (id, region, backhaul_addr) VALUES (?, ?, ?)',
      ['worker-2', 'local', new URL(backhaul.urls.proxy).host],
    ],
    "INSERT INTO apps (name) VALUES ('far')",
    ...machine('far-m1', 'far', 'worker-2'),
  ]);
  await client.close();
  await ready(edge.urls.proxy);
  await ready(farEdge.urls.proxy, 'far.fleet.test');
  return {
    corrosionUrl: corrosion.urls.api,
    oneHop: { url: edge.urls.proxy, pids: [edge.child.pid] },
    tls: { port: Number(new URL(edge.urls.tls).port), pids: [edge.child.pid] },
    twoHops: {
      url: farEdge.urls.proxy,
      pids: [farEdge.child.pid, backhaul.child.pid],
      host: 'far.fleet.test',
    },
  };
}

/** Waits (bounded) until the subject answers 200 for the bench's host. */
async function ready(url, hostName = host) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    // undici's request, not fetch: fetch does not send a Host header of the caller's.
    const status = await request(url, { headers: { host: hostName } })
      .then((answer) => answer.body.dump().then(() => answer.statusCode))
      .catch(() => 0);
    if (status === 200) return;
    if (Date.now() > deadline) throw new Error(`${url} never answered 200 (last ${status})`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function wrk(url, duration, hostName = host, threads = 1) {
  const out = execFileSync(
    'wrk',
    [
      `-t${threads}`,
      `-c${connections}`,
      `-d${duration}s`,
      '--latency',
      '-H',
      `Host: ${hostName}`,
      `${url}/`,
    ],
    { encoding: 'utf8' },
  );
  const toMs = (text) => {
    const matched = /([\d.]+)(us|ms|s|m)$/.exec(text);
    if (!matched) throw new Error(`${url}: unreadable wrk latency ${text}\n${out}`);
    const [, value, unit] = matched;
    return Number(value) * { us: 0.001, ms: 1, s: 1000, m: 60_000 }[unit];
  };
  const errors = /Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? '0';
  if (Number(errors) > 0) throw new Error(`${url}: ${errors} failed responses\n${out}`);
  return {
    rate: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)[1]),
    requests: Number(/(\d+) requests in/.exec(out)[1]),
    p50: toMs(/^\s+50%\s+(\S+)/m.exec(out)[1]),
    p99: toMs(/^\s+99%\s+(\S+)/m.exec(out)[1]),
  };
}

/**
 * Where the targets stand against what Node allows: the floors' own ratios to nginx and
 * node-http-proxy, and fly-proxy's CPU per request as a multiple of the complete and the lean
 * floor's.
 */
function reportFloors(results) {
  const floors = ['floor: complete HTTP', 'floor: lean HTTP', 'floor: relay'];
  const ratios = (baseline) =>
    floors
      .map(
        (name) => `${name.slice(7)} ${(results[name].rate / results[baseline].rate).toFixed(2)}x`,
      )
      .join(', ');
  const cpu = (name) => (results['fly-proxy'].cpuPer10k / results[name].cpuPer10k).toFixed(2);
  console.log(`floors / nginx: ${ratios('nginx')} req/s`);
  console.log(
    `floors / node-http-proxy: ${ratios('node-http-proxy')} req/s (fly-proxy's CPU per request ` +
      `${cpu(floors[0])}x the complete floor's, ${cpu(floors[1])}x the lean floor's)`,
  );
}

function report(title, results, baseline, oneHop, threads = 1) {
  console.log(
    `\nHTTP/1.1 keep-alive, ${title}, wrk -t${threads} -c${connections}, ${turns} turns of ${turnSeconds}s each${threads === 1 ? ', one core per process' : ''}\n`,
  );
  console.log('subject                req/s     p50 ms   p99 ms   CPU ms per 10k');
  for (const [name, r] of Object.entries(results)) {
    console.log(
      `${name.padEnd(20)} ${r.rate.toFixed(0).padStart(8)} ${r.p50.toFixed(2).padStart(9)} ${r.p99.toFixed(2).padStart(8)} ${r.cpuPer10k.toFixed(0).padStart(10)}`,
    );
  }
  const ours = results[oneHop ? 'fly-proxy' : 'fly-proxy x2'];
  const base = results[baseline];
  console.log(
    `\nfly-proxy / ${baseline}: ${(ours.rate / base.rate).toFixed(2)}x req/s (target at least ${oneHop ? '0.6' : '0.35'})` +
      (oneHop ? `, p99 ${(ours.p99 / base.p99).toFixed(2)}x (target at most 2)` : ''),
  );
  if (oneHop) {
    const nodeProxy = results['node-http-proxy'];
    console.log(
      `fly-proxy / node-http-proxy: ${(ours.rate / nodeProxy.rate).toFixed(2)}x req/s (target at least 2)`,
    );
  }
}
