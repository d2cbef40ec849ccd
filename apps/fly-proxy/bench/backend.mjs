// The machine every subject of the HTTP bench forwards to: a hello server like packages/sample-images/images/hello
// (one small JSON answer per request), one process, one core. Prints its port on stdout.
import { createServer } from 'node:http';

const server = createServer((request, response) => {
  const body = JSON.stringify({ machine_id: 'bench-m1', region: 'local', path: request.url });
  response.writeHead(200, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
  });
  response.end(body);
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
