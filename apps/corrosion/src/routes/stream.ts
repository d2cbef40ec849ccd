import type { ServerResponse } from 'node:http';
import type { FastifyReply } from 'fastify';

/** How long-lived streams (subscriptions, updates) treat their clients. */
export interface StreamLimits {
  /** Unsent bytes after which a slow subscriber is disconnected. */
  bufferedBytesMax: number;
  /** An idle stream gets an empty line this often, so a client notices a vanished agent. */
  heartbeatMs: number;
}

/**
 * Starts an NDJSON answer on a hijacked reply. With `heartbeatMs`, the stream sends an empty line
 * whenever it has been idle that long (Corrosion's clients skip empty lines), and the socket
 * gets TCP keep-alive probes at the same period, so both ends notice a peer that vanished
 * without closing: the client by silence, the agent by a failed probe.
 */
export function startNdjson(
  reply: FastifyReply,
  headers: Record<string, string> = {},
  heartbeatMs?: number,
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
  if (heartbeatMs !== undefined) heartbeat(response, heartbeatMs);
  return response;
}

function heartbeat(response: ServerResponse, heartbeatMs: number): void {
  response.socket?.setKeepAlive(true, heartbeatMs);
  let sent = bytesWritten(response);
  const timer = setInterval(() => {
    // Only when idle: nothing was written since the last beat and nothing waits to be sent.
    if (response.writableLength === 0 && sent === bytesWritten(response)) response.write('\n');
    sent = bytesWritten(response);
  }, heartbeatMs);
  timer.unref();
  response.once('close', () => clearInterval(timer));
}

const bytesWritten = (response: ServerResponse) => response.socket?.bytesWritten ?? 0;

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
