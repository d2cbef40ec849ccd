import { execFile } from 'node:child_process';
import { createServer, get, type Server } from 'node:http';
import { type ClientHttp2Session, connect as connectH2 } from 'node:http2';
import { connect, createServer as createNetServer, type Server as NetServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { until } from '@fleet/service/vitest-until';
import { listening } from './relay-fixture.js';

const here = dirname(fileURLToPath(import.meta.url));
const proxyctl = join(here, '..', 'dist', 'control', 'proxyctl.js');
const chunk = Buffer.alloc(64 * 1024, 'a');

/**
 * A machine that streams: `/stream` answers a body that never ends (as fast as the reader takes
 * it, with backpressure), `/bytes/<n>` exactly n bytes, `/upload` the length of the body it read,
 * anything else a short answer.
 */
export async function startStreamingMachine(): Promise<{ server: Server; addr: string }> {
  return listening(
    createServer((req, res) => {
      if (req.url === '/upload') {
        let received = 0;
        req.on('data', (data: Buffer) => {
          received += data.length;
        });
        req.on('end', () => res.end(String(received)));
        return;
      }
      const size = /^\/bytes\/(\d+)$/.exec(req.url ?? '')?.[1];
      if (size !== undefined) {
        res.setHeader('content-length', size);
        res.end(Buffer.alloc(Number(size), 'b'));
        return;
      }
      if (req.url !== '/stream') {
        res.end('ok');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const pump = () => {
        while (!res.destroyed && res.write(chunk));
      };
      res.on('drain', pump);
      pump();
    }),
  );
}

/** A raw TCP machine that writes bytes without end to every connection (backpressure kept). */
export async function startTcpFirehose(): Promise<{ server: NetServer; addr: string }> {
  const server = createNetServer((socket) => {
    socket.on('error', () => undefined);
    const pump = () => {
      while (!socket.destroyed && socket.write(chunk));
    };
    socket.on('drain', pump);
    pump();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, addr: `127.0.0.1:${(server.address() as { port: number }).port}` };
}

/** A reader of an endless body: bytes counted as they arrive, stopped with `close`. */
export interface Reader {
  bytes(): number;
  close(): void;
}

/** Reads `/stream` of `host` through an HTTP/1.1 proxy at `url`. */
export function readHttp1(url: string, host: string): Reader {
  let bytes = 0;
  const request = get(`${url}/stream`, { headers: { host }, agent: false }, (response) => {
    response.on('data', (data: Buffer) => {
      bytes += data.length;
    });
    response.on('error', () => undefined);
  });
  request.on('error', () => undefined);
  return { bytes: () => bytes, close: () => request.destroy() };
}

/** Reads `/stream` of `host` as an HTTP/2 (h2c) stream. */
export function readHttp2(url: string, host: string): Reader {
  let bytes = 0;
  const session: ClientHttp2Session = connectH2(url);
  session.on('error', () => undefined);
  const stream = session.request({ ':path': '/stream', ':authority': host });
  stream.on('data', (data: Buffer) => {
    bytes += data.length;
  });
  stream.on('error', () => undefined);
  return { bytes: () => bytes, close: () => session.destroy() };
}

/** Reads what a raw TCP public port sends. */
export function readTcp(port: number, host = '127.0.0.1'): Reader {
  let bytes = 0;
  const socket = connect(port, host);
  socket.on('data', (data: Buffer) => {
    bytes += data.length;
  });
  socket.on('error', () => undefined);
  return { bytes: () => bytes, close: () => socket.destroy() };
}

/**
 * Bytes a reader got over a window of `windowMs` by the test's clock, after `settleMs` of
 * reading (the burst spent): with the window's real length, so a slow machine only widens it.
 */
export async function measure(
  reader: Reader,
  settleMs: number,
  windowMs: number,
): Promise<{ bytes: number; seconds: number }> {
  await until('the first byte', () => reader.bytes() > 0);
  await sleep(settleMs);
  const startBytes = reader.bytes();
  const startMs = Date.now();
  await sleep(windowMs);
  return { bytes: reader.bytes() - startBytes, seconds: (Date.now() - startMs) / 1000 };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs the real proxyctl with `args`; its stdout, or the failure with its stderr. */
export function runProxyctl(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [proxyctl, ...args],
      { timeout: 20_000 },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`proxyctl ${args.join(' ')}: ${error.message} ${stderr}`));
        else resolve(stdout);
      },
    );
  });
}

export interface AirtimeApp {
  app: string;
  rateBytesPerSecond: number;
  tokens: number;
  throttled: boolean;
  reason: string | null;
  bytesOut: number;
}

export interface AirtimeAnswer {
  host: { cpuBusyRatio: number | null; sampleError: string | null };
  budget: { bytesPerSecond: number | null; pressure: string[] };
  strict: { holder: string } | null;
  apps: AirtimeApp[];
}

/** `proxyctl airtime --json` of the proxy on `socket`. */
export async function airtimeOf(socket: string): Promise<AirtimeAnswer> {
  const answer = JSON.parse(await runProxyctl(['--socket', socket, '--json', 'airtime'])) as {
    ok: boolean;
    result: AirtimeAnswer;
  };
  if (!answer.ok) throw new Error(`proxyctl airtime failed: ${JSON.stringify(answer)}`);
  return answer.result;
}

export { until } from '@fleet/service/vitest-until';
