#!/usr/bin/env node
// fly-proxy as N processes accepting on one port, for the bench's "2 workers" runs. Node 20 has
// no reusePort, so this does what fly-proxy-watchdog does while two generations overlap in a
// handoff (see the README's "Restarts without dropping"): it is the `cluster` primary with
// scheduling `none`, binds each address once and hands the handle to every worker, which accepts
// on it itself (the kernel spreads connections); it holds the instance lock of the state
// directory under the watchdog's name, as the generations require. Prints the workers' pids as
// JSON once every worker said it is ready; SIGTERM stops them.
// Usage: node bench/fly-proxy-workers.mjs <workers> <state-dir> <fly-proxy main.js> [args...]
import cluster from 'node:cluster';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { lockState } from '@fleet/service';

const [workersText, stateDir, proxyMain, ...args] = process.argv.slice(2);
const workers = Number(workersText);
mkdirSync(stateDir, { recursive: true, mode: 0o700 });
const lock = lockState(join(stateDir, 'fly-proxy.lock'), 'fly-proxy-watchdog');
cluster.schedulingPolicy = cluster.SCHED_NONE;
cluster.setupPrimary({
  exec: proxyMain,
  // As the bench's other fly-proxy processes get them (its `FLY_PROXY_NODE_ARGS`).
  execArgv: (process.env.FLY_PROXY_NODE_ARGS ?? '').split(' ').filter(Boolean),
  args: ['--state-dir', stateDir, ...args],
  stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
});
const started = Array.from({ length: workers }, () => cluster.fork());
let ready = 0;
for (const worker of started) {
  worker.on('message', (message) => {
    if (message?.type !== 'fleet:ready') return;
    ready += 1;
    if (ready === workers) console.log(JSON.stringify(started.map((each) => each.process.pid)));
  });
  worker.on('exit', (code) => {
    if (!stopping) {
      console.error(`fly-proxy worker ${worker.process.pid} exited ${code}`);
      process.exit(1);
    }
  });
}
let stopping = false;
process.on('SIGTERM', async () => {
  stopping = true;
  await Promise.all(
    started.map(
      (worker) =>
        new Promise((resolve) => {
          if (worker.isDead()) resolve();
          worker.once('exit', resolve);
          worker.process.kill('SIGTERM');
        }),
    ),
  );
  lock.release();
  process.exit(0);
});
