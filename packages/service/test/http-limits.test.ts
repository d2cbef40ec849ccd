import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createHttpServer,
  createLogger,
  type HttpLimits,
  httpLimits,
  httpLimitsSpec,
  listenHttp,
  parseConfig,
} from '../src/index.js';

const logger = createLogger('test');
logger.level = 'silent';

const limits = (overrides: Partial<HttpLimits> = {}): HttpLimits => ({
  inFlightMax: 2,
  headersTimeoutMs: 300,
  requestTimeoutMs: 600,
  keepAliveTimeoutMs: 1_000,
  overloadedCode: 'TEST_ERR_OVERLOADED',
  ...overrides,
});

const servers: ReturnType<typeof createHttpServer>[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.server.closeAllConnections();
    await server.close();
  }
});

/** A server whose GET /hold answers only when released, so requests stay in flight. */
async function holdingServer(options: HttpLimits) {
  const server = createHttpServer({ logger, limits: options });
  servers.push(server);
  const waiting: (() => void)[] = [];
  server.get('/hold', async () => {
    await new Promise<void>((resolve) => waiting.push(resolve));
    return { held: true };
  });
  server.get('/quick', async () => ({ quick: true }));
  const url = await listenHttp(server, '127.0.0.1:0');
  const until = async (count: number) => {
    for (let tries = 0; waiting.length < count; tries++) {
      if (tries > 500) throw new Error(`${waiting.length} of ${count} requests arrived`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };
  const release = () => {
    for (const go of waiting.splice(0)) go();
  };
  return { url, waiting, until, release };
}

describe('HTTP limits', () => {
  it('answers 503 with the server’s code past the requests in flight, and takes requests again after', async () => {
    const { url, until, release } = await holdingServer(limits());
    const held = [fetch(`${url}/hold`), fetch(`${url}/hold`)];
    await until(2);
    const refused = await fetch(`${url}/quick`);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(await refused.json()).toMatchObject({ code: 'TEST_ERR_OVERLOADED' });
    const metrics = await fetch(`${url}/metrics`);
    expect(metrics.status).not.toBe(503); // never refused (404 here: this server exports none)
    release();
    for (const response of await Promise.all(held)) expect(response.status).toBe(200);
    expect((await fetch(`${url}/quick`)).status).toBe(200);
  });

  it('a request whose client goes away stops counting', async () => {
    const { url, until, release } = await holdingServer(limits({ inFlightMax: 1 }));
    const controller = new AbortController();
    const gone = fetch(`${url}/hold`, { signal: controller.signal }).catch(() => 'aborted');
    await until(1);
    controller.abort();
    expect(await gone).toBe('aborted');
    let status = 503;
    for (let tries = 0; status === 503 && tries < 200; tries++) {
      status = (await fetch(`${url}/quick`)).status;
      if (status === 503) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(status).toBe(200);
    release();
  });

  it('cuts off a client that never finishes its headers (slowloris)', async () => {
    const { url } = await holdingServer(limits());
    const { port } = new URL(url);
    const socket = connect(Number(port), '127.0.0.1');
    socket.write('GET /quick HTTP/1.1\r\nHost: x\r\n');
    const answer = await new Promise<string>((resolve, reject) => {
      let text = '';
      const timer = setTimeout(() => reject(new Error('still open after 15 s')), 15_000);
      socket.on('data', (chunk) => {
        text += chunk.toString();
      });
      socket.on('close', () => {
        clearTimeout(timer);
        resolve(text);
      });
      socket.on('error', () => {});
    });
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
  });

  it('reads its flags with ranges, naming the flag that is out of range', () => {
    const config = parseConfig({ name: 'test', summary: '' }, httpLimitsSpec, [
      '--in-flight-max',
      '7',
    ]);
    expect(httpLimits(config!, 'X').inFlightMax).toBe(7);
    expect(() =>
      parseConfig({ name: 'test', summary: '' }, httpLimitsSpec, ['--in-flight-max', '0']),
    ).toThrow(/--in-flight-max/);
  });
});
