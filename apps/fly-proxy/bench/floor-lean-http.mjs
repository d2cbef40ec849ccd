// A floor, not a proxy: the least HTTP work a proxy with Fly's headers does per request. It finds
// the request head's end, routes by Host (one regular expression, one Map lookup), sends the head
// as it came with Fly's forwarding headers appended over a pooled keep-alive connection, and copies
// the answer back with `fly-request-id` spliced into its head. Nothing else: no validation (any
// smuggling gets through), no hop-by-hop headers dropped, no limits, timeouts, metrics, retries,
// only Content-Length answers. What it costs is what HTTP adds to floor-byte-relay.mjs.
// Usage: floor-lean-http.mjs <machine port> [workers] (routes `bench.fleet.test`)
import net from 'node:net';
import { forwardedHeaders, machineConnection } from './floor-parts.mjs';
import { serveOnWorkers } from './workers.mjs';

const machinePort = Number(process.argv[2]);
const headEnd = Buffer.from('\r\n\r\n');
const hostLine = /\r\nhost:[ \t]*([^\r:]*)/i;
const lengthLine = /\r\ncontent-length:[ \t]*(\d+)/i;

serveOnWorkers(Number(process.argv[3] ?? 1), (listening) => {
  const routes = new Map([['bench.fleet.test', machinePort]]);
  const idle = [];
  const idPrefix = `${process.pid.toString(36)}-`;
  let requests = 0;

  /** A pooled connection to the machine whose bytes go to `onData` until it is released. */
  const server = net.createServer((client) => {
    client.setNoDelay(true);
    client.on('error', () => {});
    const forwarded = forwardedHeaders(client);
    let buffered = null;
    let busy = false;

    function next() {
      if (busy || buffered === null) return;
      const end = buffered.indexOf(headEnd);
      if (end < 0) return;
      const head = buffered.toString('latin1', 0, end + 2);
      buffered = end + 4 === buffered.length ? null : buffered.subarray(end + 4);
      const requestId = idPrefix + (requests++).toString(36);
      const port = routes.get(hostLine.exec(head)?.[1] ?? '');
      if (port === undefined) {
        client.write('HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n');
        next();
        return;
      }
      busy = true;
      let answer = null;
      let remaining = -1;
      const connection = machineConnection(idle, port, (chunk) => {
        if (remaining >= 0) {
          remaining -= chunk.length;
          client.write(chunk);
        } else {
          answer = answer === null ? chunk : Buffer.concat([answer, chunk]);
          const answerEnd = answer.indexOf(headEnd);
          if (answerEnd < 0) return;
          const length = Number(lengthLine.exec(answer.toString('latin1', 0, answerEnd))?.[1] ?? 0);
          const added = `\r\nfly-request-id: ${requestId}\r\n\r\n`;
          const bodyBytes = answer.length - answerEnd - 4;
          remaining = length - bodyBytes;
          const out = Buffer.allocUnsafe(answerEnd + added.length + bodyBytes);
          answer.copy(out, 0, 0, answerEnd);
          out.latin1Write(added, answerEnd);
          answer.copy(out, answerEnd + added.length, answerEnd + 4);
          client.write(out);
        }
        if (remaining !== 0) return;
        connection.user = null;
        idle.push(connection);
        busy = false;
        next();
      });
      connection.socket.write(`${head}${forwarded}fly-request-id: ${requestId}\r\n\r\n`, 'latin1');
    }

    client.on('data', (chunk) => {
      buffered = buffered === null ? chunk : Buffer.concat([buffered, chunk]);
      next();
    });
  });
  server.listen(0, '127.0.0.1', () => listening(server.address().port));
});
