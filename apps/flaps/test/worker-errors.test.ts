import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FlydClient } from '@fleet/flyd-client';
import { HttpError } from '@fleet/service';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { workerFailure } from '../src/worker-errors.js';

// flaps' client of the workers, with its mapError, against a real server standing in for what
// can answer at a worker's address: flyd with a code of its registry, something else without one.
describe('a failed call to a worker, as flaps answers it', () => {
  let server: Server;
  let worker: string;
  let down: string;
  const flyd = new FlydClient({ token: 't', timeoutMs: 10_000, mapError: workerFailure });

  beforeAll(async () => {
    server = createServer((request, response) => {
      if (request.url === '/flyd') {
        response.writeHead(409, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ error: 'busy', code: 'FLYD_ERR_CONFLICT' }));
      } else {
        response.writeHead(500, { 'content-type': 'text/html' });
        response.end('<h1>Internal Server Error</h1>');
      }
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    worker = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const closed = createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    down = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
    closed.close();
    await once(closed, 'close');
  });

  afterAll(async () => {
    await flyd.close();
    server.close();
  });

  const failure = (base: string, path: string) =>
    flyd.call(base, 'GET', path).then(
      () => expect.unreachable('the call should fail'),
      (error: unknown) => error as HttpError,
    );

  it("keeps flyd's status and code", async () => {
    const error = await failure(worker, '/flyd');
    expect(error).toBeInstanceOf(HttpError);
    expect(error).toMatchObject({ statusCode: 409, code: 'FLYD_ERR_CONFLICT' });
  });

  it('answers 502 FLAPS_ERR_WORKER for an error without a code', async () => {
    const error = await failure(worker, '/other');
    expect(error).toMatchObject({ statusCode: 502, code: 'FLAPS_ERR_WORKER' });
    expect(error.message).toContain('500');
  });

  it('answers 503 FLAPS_ERR_WORKER_UNREACHABLE when nothing listens', async () => {
    const error = await failure(down, '/flyd');
    expect(error).toMatchObject({ statusCode: 503, code: 'FLAPS_ERR_WORKER_UNREACHABLE' });
  });
});
