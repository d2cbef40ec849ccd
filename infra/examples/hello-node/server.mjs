// The hello-node example app: GET / greets (the GREETING of fly.toml's [env], or a secret of that
// name) and names the machine and region that answered; GET /healthz is its health check;
// GET /env/NAME says whether the variable NAME is set and the SHA-256 of its value — enough to
// check that a secret arrived (`fleet secrets set`) without ever showing it.
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';

const port = Number(process.env.PORT ?? 8080);
// A machine in a network of its own listens on all of it, as on Fly (where 127.0.0.1 is out of
// the proxy's reach); one sharing the host's (FLY_PRIVATE_IP 127.0.0.1) on loopback only.
const listenAddress = process.env.FLY_PRIVATE_IP === '127.0.0.1' ? '127.0.0.1' : '0.0.0.0';
const greeting = process.env.GREETING ?? 'Hello';

const server = createServer((request, response) => {
  if (request.url === '/healthz') {
    response.writeHead(200, { 'content-type': 'text/plain' });
    response.end('ok\n');
    return;
  }
  const variable = request.url?.match(/^\/env\/([A-Za-z_][A-Za-z0-9_]*)$/)?.[1];
  if (variable !== undefined) {
    const value = process.env[variable];
    response.writeHead(200, { 'content-type': 'text/plain' });
    response.end(
      value === undefined
        ? `${variable} is not set\n`
        : `${variable} sha256 ${createHash('sha256').update(value).digest('hex')}\n`,
    );
    return;
  }
  const body = `${greeting} — machine ${process.env.FLY_MACHINE_ID ?? '?'} in ${process.env.FLY_REGION ?? '?'}\n`;
  response.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
  response.end(body);
});

server.listen(port, listenAddress, () => console.log(`hello-node listening on ${port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
