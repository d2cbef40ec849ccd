import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FlydClient, FlydUnreachableError } from '@fleet/flyd-client';
import { HttpError } from '@fleet/service';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { workerFailure } from '../src/worker-errors.js';

// flaps' client of the workers, with its mapError, against a real server standing in for what
// can answer at a worker's address: flyd with a code of its registry, something else without one;
// and the mapping of a worker that cannot be reached.
describe('a failed call to a worker, as flaps answers it', () => {
  let server: Server;
  let worker: string;
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

  it('answers 503 FLAPS_ERR_WORKER_UNREACHABLE for a worker that cannot be reached', () => {
    // The client's side (a refused connect becomes FlydUnreachableError) is flyd-client's test.
    const refused = new FlydUnreachableError(
      'http://127.0.0.1:1',
      new Error('connect ECONNREFUSED'),
    );
    expect(workerFailure(refused)).toMatchObject({
      statusCode: 503,
      code: 'FLAPS_ERR_WORKER_UNREACHABLE',
    });
  });
});
