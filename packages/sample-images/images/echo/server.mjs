// The `echo` machine image: a raw TCP echo server on PORT, for the proxy's raw-TCP path.
// Every byte a client sends comes back on the same connection; when the client half-closes
// (FIN), the echo finishes writing and then closes its side too.
import { createServer } from 'node:net';

const port = Number(process.env.PORT ?? 8080);
// A machine in a network of its own listens on all of it, as on Fly (where 127.0.0.1 is out of
// the proxy's reach); one sharing the host's (FLY_PRIVATE_IP 127.0.0.1) on loopback only.
const listenAddress = process.env.FLY_PRIVATE_IP === '127.0.0.1' ? '127.0.0.1' : '0.0.0.0';
/** Bounds: connections at once, and how long a silent connection is kept. */
const connectionsMax = Number(process.env.ECHO_CONNECTIONS_MAX ?? 1_000);
const idleMsMax = Number(process.env.ECHO_IDLE_MS_MAX ?? 300_000);

const server = createServer({ allowHalfOpen: true }, (socket) => {
  socket.setTimeout(idleMsMax, () => socket.destroy());
  socket.on('error', () => socket.destroy());
  // pipe() honours backpressure (a slow reader pauses our reads) and ends our side after theirs.
  socket.pipe(socket);
});
server.maxConnections = connectionsMax;

server.listen(port, listenAddress, () => {
  console.log(`echo: machine ${process.env.FLY_MACHINE_ID ?? ''} listening on ${port}`);
});

const stop = (signal) => {
  console.log(`echo: ${signal}, shutting down`);
  server.close(() => process.exit(0));
  // Open connections would keep close() waiting: end them now.
  setTimeout(() => process.exit(0), 1_000).unref();
};
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
