// node-http-proxy (the `http-proxy` package) as the bench's Node baseline: a keep-alive agent to
// the machine, as its README recommends for throughput. One process, or with a second argument N
// that many workers on one port (bench/workers.mjs). Usage: node-http-proxy.mjs <port> [N]
import { Agent, createServer } from 'node:http';
import httpProxy from 'http-proxy';
import { serveOnWorkers } from './workers.mjs';

serveOnWorkers(Number(process.argv[3] ?? 1), (listening) => {
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
  server.listen(0, '127.0.0.1', () => listening(server.address().port));
});
