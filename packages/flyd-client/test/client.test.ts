import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlydAnswerError, FlydClient, FlydUnreachableError } from '../src/index.js';

/** A failure as a caller's own error type, the way flaps maps them to its HTTP answers. */
class MappedError extends Error {
  constructor(
    readonly kind: string,
    readonly statusCode: number,
  ) {
    super(kind);
  }
}

function mapError(error: FlydAnswerError | FlydUnreachableError): Error {
  return error instanceof FlydAnswerError
    ? new MappedError(`answer ${error.code}`, error.statusCode)
    : new MappedError('unreachable', 503);
}

// A real HTTP server stands in for flyd's answers; a port nobody listens on for a worker down.
describe('FlydClient failures', () => {
  let server: Server;
  let flyd: string;
  let down: string;
  const clients: FlydClient[] = [];

  function client(withMap: boolean): FlydClient {
    const made = new FlydClient({
      token: 't',
      timeoutMs: 10_000,
      ...(withMap ? { mapError } : {}),
    });
    clients.push(made);
    return made;
  }

  beforeAll(async () => {
    server = createServer((request, response) => {
      response.writeHead(404, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ error: `no ${request.url}`, code: 'FLYD_ERR_NOT_FOUND' }));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    flyd = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const closed = createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    down = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
    closed.close();
    await once(closed, 'close');
  });

  afterAll(async () => {
    await Promise.all(clients.map((made) => made.close()));
    server.close();
  });

  it("throws flyd's refusal as a FlydAnswerError and a closed port as a FlydUnreachableError", async () => {
    const plain = client(false);
    await expect(plain.call(flyd, 'GET', '/v1/machines/m1')).rejects.toMatchObject({
      name: 'FlydAnswerError',
      statusCode: 404,
      code: 'FLYD_ERR_NOT_FOUND',
      detail: 'no /v1/machines/m1',
    });
    await expect(plain.call(down, 'GET', '/v1/machines/m1')).rejects.toBeInstanceOf(
      FlydUnreachableError,
    );
  });

  it('throws what mapError makes of each failure, from calls and streams alike', async () => {
    const mapped = client(true);
    const signal = new AbortController().signal;
    for (const failing of [
      mapped.call(flyd, 'POST', '/v1/machines/m1/stop', {}),
      mapped.stream(flyd, '/v1/logs?app=web&follow=true', signal),
    ])
      await expect(failing).rejects.toMatchObject({
        message: 'answer FLYD_ERR_NOT_FOUND',
        statusCode: 404,
      });
    for (const failing of [
      mapped.call(down, 'GET', '/v1/machines/m1'),
      mapped.stream(down, '/v1/logs?app=web', signal),
    ])
      await expect(failing).rejects.toMatchObject({ message: 'unreachable', statusCode: 503 });
  });
});
