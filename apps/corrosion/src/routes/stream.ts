import type { ServerResponse } from 'node:http';
import type { FastifyReply } from 'fastify';

/** Starts an NDJSON answer on a hijacked reply. */
export function startNdjson(
  reply: FastifyReply,
  headers: Record<string, string> = {},
): ServerResponse {
  reply.hijack();
  const response = reply.raw;
  response.writeHead(200, {
    'content-type': 'application/x-ndjson',
    'cache-control': 'no-store',
    ...headers,
  });
  // Headers go out now: a stream with nothing to say yet (updates) must still answer.
  response.flushHeaders();
  return response;
}

/**
 * A stream's line writer: false once the client is gone, and a client holding more than
 * `bufferedBytesMax` unsent bytes is disconnected rather than buffered for.
 */
export function streamWriter(
  response: ServerResponse,
  bufferedBytesMax: number,
  onDropped: () => void,
): (line: string) => boolean {
  return (line) => {
    if (response.destroyed) return false;
    response.write(line);
    if (response.writableLength > bufferedBytesMax) {
      onDropped();
      response.destroy();
      return false;
    }
    return true;
  };
}
