#!/usr/bin/env node
// New TLS handshakes per second: fly-proxy's TLS listener (certificate from the store by SNI,
// cached after the first handshake, the connection guard on) beside nginx (1 worker) and a bare
// `tls.createServer`, both with one static certificate of the same CA and key type (ECDSA
// P-256), measured in the same run with the same client. Each server runs in a process of its
// own (one core); the client opens connections with `concurrency` in flight, completes the
// handshake (TLS 1.3, no session resumption) and closes. Prints handshakes/s, server CPU per
// handshake, and fly-proxy's ratio to nginx (issue 11's target: at least 0.5).
// Usage: node apps/fly-proxy/bench/tls-handshakes.mjs [seconds=5] [concurrency=32]
// Needs `npm run build`; installs nginx-light when missing (as root).
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { cpuMs, ensureTools, startNginx } from './nginx.mjs';

const seconds = Number(process.argv[2] ?? 5);
const concurrency = Number(process.argv[3] ?? 32);
const servername = 'web.fleet.test';

if (process.env.BENCH_ROLE) await serve(process.env.BENCH_ROLE);
else await main();

async function main() {
  ensureTools(['nginx']);
  const results = {};
  results.nginx = await measureNginx();
  for (const role of ['bare', 'fleet']) {
    const child = fork(fileURLToPath(import.meta.url), [], {
      env: { ...process.env, BENCH_ROLE: role, LOG_LEVEL: 'error' },
    });
    const { port, caPem } = await new Promise((resolve) => child.once('message', resolve));
    await measure(port, caPem, 1); // warm-up: the fleet store issues and caches here
    const cpuBefore = await serverCpu(child);
    const { rate, count } = await measure(port, caPem, seconds);
    const cpuUs = (await serverCpu(child)) - cpuBefore;
    results[role] = { rate, cpuUsPerHandshake: cpuUs / count };
    child.kill();
  }
  const { nginx, bare, fleet } = results;
  console.log(
    `TLS handshakes/s (${seconds}s, ${concurrency} in flight): nginx ${nginx.rate.toFixed(0)}, bare tls.createServer ${bare.rate.toFixed(0)}, fly-proxy ${fleet.rate.toFixed(0)}`,
  );
  console.log(
    `server CPU per handshake: nginx ${nginx.cpuUsPerHandshake.toFixed(0)} µs, bare ${bare.cpuUsPerHandshake.toFixed(0)} µs, fly-proxy ${fleet.cpuUsPerHandshake.toFixed(0)} µs`,
  );
  console.log(
    `fly-proxy / nginx: ${(fleet.rate / nginx.rate).toFixed(2)}x handshakes/s, ${(nginx.cpuUsPerHandshake / fleet.cpuUsPerHandshake).toFixed(2)}x handshakes per core (target at least 0.5)`,
  );
}

/** nginx terminating TLS with a certificate of a fresh fleet CA, measured like the others. */
async function measureNginx() {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-tls-bench-'));
  try {
    const { FleetCa } = await import('../dist/tls/index.js');
    const { ca } = await FleetCa.generate();
    const issued = await ca.issue(servername, 3_600_000);
    writeFileSync(join(dir, 'cert.pem'), issued.certPem);
    writeFileSync(join(dir, 'key.pem'), issued.keyPem, { mode: 0o600 });
    const nginx = await startNginx(
      dir,
      'tls',
      `listen LISTEN ssl;
    ssl_certificate ${join(dir, 'cert.pem')};
    ssl_certificate_key ${join(dir, 'key.pem')};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_tickets off;
    location / { return 204; }`,
    );
    try {
      await measure(nginx.port, ca.certPem, 1);
      const cpuBefore = cpuMs(nginx.pid);
      const { rate, count } = await measure(nginx.port, ca.certPem, seconds);
      return { rate, cpuUsPerHandshake: ((cpuMs(nginx.pid) - cpuBefore) * 1000) / count };
    } finally {
      await nginx.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The server child's CPU time (user + system) in µs, so the figure holds when the client is the bottleneck. */
function serverCpu(child) {
  return new Promise((resolve) => {
    child.once('message', (usage) => resolve(usage.user + usage.system));
    child.send('cpu');
  });
}

async function measure(port, caPem, durationS) {
  const deadline = Date.now() + durationS * 1000;
  let done = 0;
  let failed = 0;
  const one = () =>
    new Promise((resolve) => {
      const socket = connect({ host: '127.0.0.1', port, servername, ca: caPem });
      socket.once('secureConnect', () => {
        done += 1;
        socket.destroy();
        resolve();
      });
      socket.once('error', () => {
        failed += 1;
        resolve();
      });
    });
  const started = Date.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < deadline) await one();
    }),
  );
  if (failed > 0) console.error(`${failed} handshakes failed`);
  return { rate: done / ((Date.now() - started) / 1000), count: done };
}

async function serve(role) {
  process.on('message', () => process.send(process.cpuUsage()));
  const tlsModule = await import('../dist/tls/index.js');
  const { ca } = await tlsModule.FleetCa.generate();
  if (role === 'bare') {
    const { createServer } = await import('node:tls');
    const issued = await ca.issue(servername, 3_600_000);
    const server = createServer({ cert: issued.certPem, key: issued.keyPem }, (socket) =>
      socket.end(),
    );
    server.listen(0, '127.0.0.1', () =>
      process.send({ port: server.address().port, caPem: ca.certPem }),
    );
    return;
  }
  const { createLogger } = await import('@fleet/service');
  const logger = createLogger('bench');
  const metrics = tlsModule.tlsMetrics();
  const rows = new Map();
  const store = new tlsModule.CertificateStore({
    source: {
      lookup: async (name) => rows.get(name),
      save: async (row) => rows.set(row.hostname, row),
    },
    resolveApp: async (name) => (name === servername ? 'web' : undefined),
    ca,
    fleetKey: Buffer.from('bench-fleet-key-0123456789abcdef'),
    logger,
    metrics,
  });
  const listener = tlsModule.createTlsListener({
    store,
    handler: (_request, response) => response.end(),
    http1: (socket) => socket.end(),
    logger,
    metrics,
  });
  const { port } = await listener.listen(0, '127.0.0.1');
  process.send({ port, caPem: ca.certPem });
}
