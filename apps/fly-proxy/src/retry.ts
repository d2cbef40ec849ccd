import type { IncomingMessage } from 'node:http';

/** Connection failures that prove no byte of the request reached the machine. */
const neverReached = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** RFC 9110 §9.2.2: repeating these has the same effect as sending them once. */
const idempotent = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/**
 * Whether a failed attempt may go to the next candidate: always when the machine was never
 * reached, otherwise only for an idempotent method — and never once the client's body was
 * read, since it cannot be sent again.
 */
export function retryable(error: unknown, request: IncomingMessage): boolean {
  if (request.readableDidRead) return false;
  const code = (error as { code?: string; cause?: { code?: string } }).code;
  const cause = (error as { cause?: { code?: string } }).cause?.code;
  if (neverReached.has(code ?? '') || neverReached.has(cause ?? '')) return true;
  if (code === 'UND_ERR_HEADERS_TIMEOUT') return false; // the machine took it and is slow
  return idempotent.has(request.method ?? 'GET');
}
