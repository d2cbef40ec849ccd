// A floor, not a proxy: the least work a proxy doing what issue 11 requires on every request does
// for a keep-alive GET answered with a Content-Length — floor-lean-http.mjs plus the checks and
// bookkeeping no complete proxy can skip, each in its cheapest form:
// - the request head validated as fly-proxy must (RFC 9112: request line, every field line in one
//   regular expression, exactly one Host, no Content-Length beside Transfer-Encoding), hop-by-hop
//   and proxy-owned headers (`fly-*`, `x-forwarded-*`, `via`) dropped, origin form sent;
// - routing by Host to an app, then bands: the machine's requests in flight against its soft and
//   hard limits, the lowest band first, a random pick among equals;
// - the response head validated, framed (Content-Length, chunked, none, until close) and its
//   hop-by-hop headers dropped before `fly-request-id` is added;
// - a deadline for every exchange (one sweep a second, not a timer each), a count per app and
//   status and a latency histogram.
// Paths the bench never takes (bodies, chunked answers, errors, retries, the fields a Connection
// header names besides keep-alive) are left out: on this path they would cost a branch each. fly-proxy's cost above this floor is what its own design adds.
// Usage: floor-complete-http.mjs <machine port> [workers] (routes `bench.fleet.test`)
import net from 'node:net';
import { forwardedHeaders, machineConnection } from './floor-parts.mjs';
import { serveOnWorkers } from './workers.mjs';

const machinePort = Number(process.argv[2]);
const headEnd = Buffer.from('\r\n\r\n');
const tchar = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const fieldBlock =
  /^(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*\r\n)*[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*$/;
const targetChars = /^[\x21-\x7e\x80-\xff]+$/;
const latencyBucketsMs = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, Infinity];
const deadlineMs = 60_000;

/**
 * Whether the field line of `block` at `from` (its colon at `colon`) is named `name` (lowercase),
 * whatever its case: `| 0x20` lowercases a letter and keeps `-` as it is.
 */
function isName(block, from, colon, name) {
  if (colon - from !== name.length) return false;
  for (let i = 0; i < name.length; i += 1)
    if ((block.charCodeAt(from + i) | 0x20) !== name.charCodeAt(i)) return false;
  return true;
}

/** Whether the name of the field line of `block` at `from` starts with `prefix` (lowercase). */
function isPrefix(block, from, colon, prefix) {
  return colon - from > prefix.length && isName(block, from, from + prefix.length, prefix);
}

serveOnWorkers(Number(process.argv[3] ?? 1), (listening) => {
  // Fly's default concurrency: a soft limit of 20, no hard limit.
  const machines = [{ port: machinePort, inFlight: 0, soft: 20, hard: Infinity }];
  const apps = new Map([
    ['bench', { machines, counts: new Map(), latency: latencyBucketsMs.map(() => 0) }],
  ]);
  const hosts = new Map([['bench.fleet.test', 'bench']]);
  const idle = new Map(machines.map((machine) => [machine, []]));
  const active = new Set();
  const idPrefix = `${process.pid.toString(36)}-`;
  let requests = 0;

  setInterval(() => {
    const now = performance.now();
    for (const exchange of active) if (now - exchange.started > deadlineMs) exchange.timeout();
  }, 1_000).unref();

  function pick(app) {
    let best = null;
    let bestBand = 3;
    let ties = 0;
    for (const machine of app.machines) {
      const band = machine.inFlight < machine.soft ? 0 : machine.inFlight < machine.hard ? 1 : 2;
      if (band < bestBand) {
        best = machine;
        bestBand = band;
        ties = 1;
      } else if (band === bestBand && Math.random() * ++ties < 1) best = machine;
    }
    return bestBand < 2 ? best : null;
  }

  /**
   * The field lines of `block` validated in one test and scanned once (names compared in place,
   * whatever their case: no slice or lowercased copy per line): what routing and framing need,
   * and the block without its hop-by-hop lines (and, of a request, the proxy's own), copied in
   * spans between the dropped ones.
   */
  function scanFields(block, request) {
    const fields = { kept: '', host: '', hosts: 0, length: -1, chunked: false, coded: false };
    if (block.length > 0 && !fieldBlock.test(block)) return null;
    let span = 0;
    for (let from = 0; from < block.length; ) {
      let end = block.indexOf('\r\n', from);
      if (end < 0) end = block.length;
      const colon = block.indexOf(':', from);
      let drop = false;
      switch (block.charCodeAt(from) | 0x20) {
        case 104 /* h */:
          if (isName(block, from, colon, 'host')) {
            const value = block
              .slice(colon + 1, end)
              .trim()
              .toLowerCase();
            const port = value.indexOf(':');
            fields.host = port < 0 ? value : value.slice(0, port);
            fields.hosts += 1;
          }
          break;
        case 99 /* c */:
          if (isName(block, from, colon, 'content-length'))
            fields.length = Number(block.slice(colon + 1, end));
          else drop = isName(block, from, colon, 'connection');
          break;
        case 116 /* t */:
          if (isName(block, from, colon, 'transfer-encoding')) {
            fields.coded = true;
            fields.chunked =
              block
                .slice(colon + 1, end)
                .trim()
                .toLowerCase() === 'chunked';
            drop = true;
          } else drop = isName(block, from, colon, 'te') || isName(block, from, colon, 'trailer');
          break;
        case 107 /* k */:
          drop = isName(block, from, colon, 'keep-alive');
          break;
        case 112 /* p */:
          drop = isName(block, from, colon, 'proxy-connection');
          break;
        case 117 /* u */:
          drop = isName(block, from, colon, 'upgrade');
          break;
        case 118 /* v */:
          drop = request && isName(block, from, colon, 'via');
          break;
        case 102 /* f */:
          drop = request && isPrefix(block, from, colon, 'fly-');
          break;
        case 120 /* x */:
          drop = request && isPrefix(block, from, colon, 'x-forwarded-');
          break;
      }
      if (drop) {
        fields.kept += block.slice(span, from);
        span = end + 2;
      }
      from = end + 2;
    }
    if (span < block.length) fields.kept += `${block.slice(span)}\r\n`;
    return fields;
  }

  const server = net.createServer((client) => {
    client.setNoDelay(true);
    client.on('error', () => {});
    const forwarded = forwardedHeaders(client);
    let buffered = null;
    let busy = false;

    function refuse(status, reason) {
      const body = JSON.stringify({ error: reason });
      client.end(
        `HTTP/1.1 ${status} Refused\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
      );
    }

    function next() {
      if (busy || buffered === null) return;
      const end = buffered.indexOf(headEnd);
      if (end < 0) return;
      const head = buffered.toString('latin1', 0, end);
      buffered = end + 4 === buffered.length ? null : buffered.subarray(end + 4);
      const lineEnd = head.indexOf('\r\n');
      const line = lineEnd < 0 ? head : head.slice(0, lineEnd);
      const first = line.indexOf(' ');
      const second = line.indexOf(' ', first + 1);
      const method = line.slice(0, first);
      const target = line.slice(first + 1, second);
      const version = line.slice(second + 1);
      if (
        first <= 0 ||
        !tchar.test(method) ||
        target.charCodeAt(0) !== 47 ||
        !targetChars.test(target) ||
        (version !== 'HTTP/1.1' && version !== 'HTTP/1.0')
      )
        return refuse(400, 'malformed request line');
      const fields = scanFields(lineEnd < 0 ? '' : head.slice(lineEnd + 2), true);
      if (fields === null) return refuse(400, 'malformed header field');
      if (fields.hosts !== 1) return refuse(400, 'exactly one Host header is required');
      if (fields.length >= 0 && fields.coded)
        return refuse(400, 'Content-Length beside Transfer-Encoding');
      const host = fields.host;
      const app = apps.get(hosts.get(host) ?? '');
      if (app === undefined) return refuse(404, `no app for ${host}`);
      const machine = pick(app);
      if (machine === null) return refuse(503, 'every machine is at its hard limit');
      const requestId = idPrefix + (requests++).toString(36);
      machine.inFlight += 1;
      busy = true;
      let answer = null;
      let remaining = -1;
      const exchange = {
        started: performance.now(),
        timeout: () => {
          active.delete(exchange);
          connection.socket.destroy();
          refuse(504, 'the machine did not answer in time');
        },
      };
      active.add(exchange);
      const done = (status) => {
        active.delete(exchange);
        machine.inFlight -= 1;
        app.counts.set(status, (app.counts.get(status) ?? 0) + 1);
        const ms = performance.now() - exchange.started;
        let bucket = 0;
        while (ms > latencyBucketsMs[bucket]) bucket += 1;
        app.latency[bucket] += 1;
        connection.user = null;
        idle.get(machine).push(connection);
        busy = false;
        next();
      };
      let status = 0;
      const connection = machineConnection(idle.get(machine), machine.port, (chunk) => {
        if (remaining >= 0) {
          remaining -= chunk.length;
          client.write(chunk);
        } else {
          answer = answer === null ? chunk : Buffer.concat([answer, chunk]);
          const answerEnd = answer.indexOf(headEnd);
          if (answerEnd < 0) return;
          const text = answer.toString('latin1', 0, answerEnd);
          const statusEnd = text.indexOf('\r\n');
          status = Number(text.slice(9, 12));
          if (!text.startsWith('HTTP/1.') || !(status >= 100 && status < 600))
            return exchange.timeout();
          const fields = scanFields(text.slice(statusEnd + 2), false);
          if (fields === null || fields.chunked || fields.length < 0) return exchange.timeout(); // not on this path
          const length = fields.length;
          const out = `${text.slice(0, statusEnd + 2)}${fields.kept}fly-request-id: ${requestId}\r\n\r\n`;
          const bodyBytes = answer.length - answerEnd - 4;
          remaining = length - bodyBytes;
          const joined = Buffer.allocUnsafe(out.length + bodyBytes);
          joined.latin1Write(out, 0);
          answer.copy(joined, out.length, answerEnd + 4);
          client.write(joined);
        }
        if (remaining === 0) done(status);
      });
      connection.socket.write(
        `${method} ${target} HTTP/1.1\r\n${fields.kept}${forwarded}fly-request-id: ${requestId}\r\n\r\n`,
        'latin1',
      );
    }

    client.on('data', (chunk) => {
      buffered = buffered === null ? chunk : Buffer.concat([buffered, chunk]);
      next();
    });
  });
  server.listen(0, '127.0.0.1', () => listening(server.address().port));
});
