// node-http-proxy (the `http-proxy` package) as the bench's Node baseline: one process, a
// keep-alive agent to the machine, as its README recommends for throughput. Prints its port.
import { Agent, createServer } from 'node:http';
import httpProxy from 'http-proxy';

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
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
