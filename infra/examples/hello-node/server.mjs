// The hello-node example app: GET / greets (the GREETING of fly.toml's [env]) and names the
// machine and region that answered; GET /healthz is its health check.
import { createServer } from 'node:http';

const port = Number(process.env.PORT ?? 8080);
const greeting = process.env.GREETING ?? 'Hello';

const server = createServer((request, response) => {
  if (request.url === '/healthz') {
    response.writeHead(200, { 'content-type': 'text/plain' });
    response.end('ok\n');
    return;
  }
  const body = `${greeting} — machine ${process.env.FLY_MACHINE_ID ?? '?'} in ${process.env.FLY_REGION ?? '?'}\n`;
  response.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
  response.end(body);
});

server.listen(port, '127.0.0.1', () => console.log(`hello-node listening on ${port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
