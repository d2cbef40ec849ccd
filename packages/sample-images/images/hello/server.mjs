// The `hello` machine image: answers every request with who served it, as JSON.
import { createServer } from 'node:http';
import { hostname } from 'node:os';

const port = Number(process.env.PORT ?? 8080);
// A machine in a network of its own listens on all of it, as on Fly (where 127.0.0.1 is out of
// the proxy's reach); one sharing the host's (FLY_PRIVATE_IP 127.0.0.1) on loopback only.
const listenAddress = process.env.FLY_PRIVATE_IP === '127.0.0.1' ? '127.0.0.1' : '0.0.0.0';
const identity = {
  machine_id: process.env.FLY_MACHINE_ID ?? '',
  app: process.env.FLY_APP_NAME ?? '',
  region: process.env.FLY_REGION ?? '',
  image: process.env.FLY_IMAGE_REF ?? '',
  hostname: hostname(),
};

const server = createServer((request, response) => {
  const body = JSON.stringify({
    ...identity,
    path: request.url,
    request_id: request.headers['fly-request-id'] ?? null,
  });
  response.writeHead(200, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
  });
  response.end(body);
});

server.listen(port, listenAddress, () => {
  console.log(`hello: machine ${identity.machine_id} of ${identity.app} listening on ${port}`);
});

const stop = (signal) => {
  console.log(`hello: ${signal}, shutting down`);
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
