// What the two HTTP floors (floor-lean-http.mjs, floor-complete-http.mjs) share: the same pooled
// connections to the machine and the same forwarding headers, so their difference is the checks.
import net from 'node:net';

/**
 * A keep-alive connection to the machine at `port`, taken from `idle` (a stack the caller pushes
 * a released connection back onto) or opened: its bytes go to `connection.user` (`onData` now).
 */
export function machineConnection(idle, port, onData) {
  const pooled = idle.pop();
  if (pooled !== undefined) {
    pooled.user = onData;
    return pooled;
  }
  const socket = net.connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  socket.on('error', () => {});
  const connection = { socket, user: onData };
  socket.on('data', (chunk) => connection.user(chunk));
  return connection;
}

/** Fly's forwarding headers for a plain HTTP client connection, as lines ending in CRLF. */
export function forwardedHeaders(client) {
  return (
    `fly-client-ip: ${client.remoteAddress}\r\nfly-forwarded-port: ${client.localPort}\r\n` +
    `fly-region: local\r\nx-forwarded-for: ${client.remoteAddress}\r\nx-forwarded-proto: http\r\n` +
    `x-forwarded-port: ${client.localPort}\r\nx-forwarded-ssl: off\r\nvia: 1.1 fly.io\r\n`
  );
}
