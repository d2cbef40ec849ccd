import { createServer } from 'node:http';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { errorCodesInReadme } from '@fleet/service';
import { describe, expect, it } from 'vitest';
import { CorrosionClient, CorrosionError, CorrosionErrorCodes } from '../src/index.js';
import { ndjsonEvents } from '../src/ndjson.js';

async function collect<T>(events: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const event of events) all.push(event);
  return all;
}

// The client reads Corrosion's NDJSON however the bytes are split, and fails clearly.
describe('corrosion client', () => {
  it('parses NDJSON split across chunks', async () => {
    const chunks = ['{"colu', 'mns":["a"]}\n{"row":[1,["x"]]}\n', '\n{"eoq":{"time":0.1}}'];
    expect(
      await collect(ndjsonEvents(Readable.from(chunks.map((chunk) => Buffer.from(chunk))))),
    ).toEqual([{ columns: ['a'] }, { row: [1, ['x']] }, { eoq: { time: 0.1 } }]);
    await expect(
      collect(ndjsonEvents(Readable.from([Buffer.from('not json\n')]))),
    ).rejects.toMatchObject({
      code: 'CORRO_ERR_PROTOCOL',
    });
  });

  it('reports an unreachable agent and an error status with their codes', async () => {
    const down = new CorrosionClient({ url: 'http://127.0.0.1:1', timeoutMs: 1000 });
    await expect(down.query('SELECT 1')).rejects.toMatchObject({ code: 'CORRO_ERR_UNREACHABLE' });
    await down.close();
    const server = createServer((_request, response) => {
      // A failed transaction as Corrosion answers it.
      response.writeHead(500, { 'content-type': 'application/json' });
      response.end(
        JSON.stringify({
          results: [{ error: 'statement 0: no such table: nope' }],
          time: 0,
          version: null,
          actor_id: '00',
        }),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const client = new CorrosionClient({
      url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    });
    const failure = await client.transaction(['DELETE FROM nope']).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(CorrosionError);
    expect(failure).toMatchObject({
      code: 'CORRO_ERR_HTTP',
      statusCode: 500,
      message: expect.stringMatching(/no such table/),
    });
    await client.close();
    server.close();
  });

  it('documents every error code', () => {
    const readme = join(dirname(fileURLToPath(import.meta.url)), '..', 'README.md');
    expect(errorCodesInReadme(readme).sort()).toEqual(Object.keys(CorrosionErrorCodes).sort());
  });
});
