// Runs a bench subject's server as N `cluster` workers accepting on one port (scheduling `none`:
// the kernel spreads connections, as fly-proxy's workers in the bench), or in this process when
// N is 1. `listen(done)` starts one server and calls `done(port)`. Prints the port, then (N > 1)
// the workers' pids as JSON; SIGTERM stops them.
import cluster from 'node:cluster';

export function serveOnWorkers(workers, listen) {
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  if (workers <= 1 || !cluster.isPrimary) {
    listen((port) => {
      if (cluster.isPrimary) console.log(port);
    });
    return;
  }
  const started = Array.from({ length: workers }, () => cluster.fork());
  let listening = 0;
  cluster.on('listening', (_worker, address) => {
    listening += 1;
    if (listening < workers) return;
    console.log(address.port);
    console.log(JSON.stringify(started.map((worker) => worker.process.pid)));
  });
  process.on('SIGTERM', () => {
    for (const worker of started) worker.process.kill('SIGTERM');
    process.exit(0);
  });
}
