import type { IncomingMessage } from 'node:http';

/** Connection failures that prove no byte of the request reached the machine. */
const neverReachedCodes = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
  'PROXY_CONNECT_TIMEOUT',
]);

/** RFC 9110 §9.2.2: repeating these has the same effect as sending them once. */
const idempotentMethods = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

export function neverReached(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  const cause = (error as { cause?: { code?: string } }).cause?.code;
  return neverReachedCodes.has(code ?? '') || neverReachedCodes.has(cause ?? '');
}

export function idempotent(method: string): boolean {
  return idempotentMethods.has(method);
}

/**
 * Whether a failed attempt may go to the next candidate: always when the machine was never
 * reached, otherwise only for an idempotent method — and never once the client's body was
 * read, since it cannot be sent again.
 */
export function retryable(error: unknown, request: IncomingMessage): boolean {
  if (request.readableDidRead) return false;
  if (neverReached(error)) return true;
  if ((error as { code?: string }).code === 'UND_ERR_HEADERS_TIMEOUT') return false; // slow machine
  return idempotent(request.method ?? 'GET');
}
