#!/usr/bin/env node
// New TLS handshakes per second: fly-proxy's TLS listener (certificate from the store by SNI,
// cached after the first handshake, the connection guard on) beside a bare `tls.createServer`
// with one static certificate, measured in the same run with the same client. Each server runs
// in its own child process (one core each, like a one-worker nginx); the client here opens
// connections with `concurrency` in flight, completes the handshake (no session resumption) and
// closes. Usage: node apps/fly-proxy/bench/tls-handshakes.mjs [seconds=5] [concurrency=32]
// Needs `npm run build`. Prints handshakes/s for each and the ratio.
import { fork } from 'node:child_process';
import { connect } from 'node:tls';
import { fileURLToPath } from 'node:url';

const seconds = Number(process.argv[2] ?? 5);
const concurrency = Number(process.argv[3] ?? 32);
const servername = 'web.fleet.test';

if (process.env.BENCH_ROLE) await serve(process.env.BENCH_ROLE);
else await main();

async function main() {
  const results = {};
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
  const { bare, fleet } = results;
  console.log(
    `TLS handshakes/s (${seconds}s, ${concurrency} in flight): bare tls.createServer ${bare.rate.toFixed(0)}, fly-proxy ${fleet.rate.toFixed(0)}, ratio ${(fleet.rate / bare.rate).toFixed(2)}`,
  );
  console.log(
    `server CPU per handshake: bare ${bare.cpuUsPerHandshake.toFixed(0)} µs, fly-proxy ${fleet.cpuUsPerHandshake.toFixed(0)} µs, capacity ratio ${(bare.cpuUsPerHandshake / fleet.cpuUsPerHandshake).toFixed(2)}`,
  );
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
    logger,
    metrics,
  });
  const { port } = await listener.listen(0, '127.0.0.1');
  process.send({ port, caPem: ca.certPem });
}
