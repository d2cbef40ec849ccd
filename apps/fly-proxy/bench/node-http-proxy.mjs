// node-http-proxy (the `http-proxy` package) as the bench's Node baseline: a keep-alive agent to
// the machine, as its README recommends for throughput. One process, or with a second argument N
// that many `cluster` workers accepting on one port (scheduling `none`, the kernel spreading
// connections, as fly-proxy's workers in the bench). Prints its port, then (N > 1) the workers'
// pids as JSON.
import cluster from 'node:cluster';
import { Agent, createServer } from 'node:http';
import httpProxy from 'http-proxy';

const workers = Number(process.argv[3] ?? 1);
cluster.schedulingPolicy = cluster.SCHED_NONE;

if (workers > 1 && cluster.isPrimary) {
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
} else {
  const target = `http://127.0.0.1:${process.argv[2]}`;
  const proxy = httpProxy.createProxyServer({
    target,
    agent: new Agent({ keepAlive: true, maxSockets: 64 }),
  });
  proxy.on('error', (_error, _request, response) => {
    response.writeHead?.(502);
    response.end();
  });
  const server = createServer((request, response) => proxy.web(request, response));
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => {
    if (cluster.isPrimary) console.log(server.address().port);
  });
}
