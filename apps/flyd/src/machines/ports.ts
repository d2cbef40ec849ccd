import { connect, createServer } from 'node:net';

/** A port free on 127.0.0.1 right now, from the kernel's ephemeral range. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * Resolves true once something accepts connections on `host`:`port`, false after `timeoutMs`
 * or as soon as `stillWorth()` says the wait is pointless (the process died).
 */
export async function waitForListener(
  host: string,
  port: number,
  timeoutMs: number,
  stillWorth: () => boolean,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && stillWorth()) {
    if (await accepts(host, port)) return true;
    // A short interval: a process takes tens of ms to listen and every ms of poll slack is
    // start latency (a 25 ms interval made stopped → started ~2× a bare spawn). A refused
    // loopback connect costs microseconds, and the wait is bounded by `timeoutMs`.
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return false;
}

/**
 * A connection attempt, given up after `attemptMs`: a SYN sent while a machine's own network is
 * still being configured is dropped, not refused, and the kernel would retry it only after a
 * second.
 */
function accepts(host: string, port: number, attemptMs = 100): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.setTimeout(attemptMs, () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('connect', () => {
      // Probing an ephemeral port nobody listens on can "succeed" by the kernel connecting the
      // socket to itself (same source and destination port): that is not a listener.
      const self = socket.localPort === port;
      socket.destroy();
      resolve(!self);
    });
    socket.once('error', () => resolve(false));
  });
}
