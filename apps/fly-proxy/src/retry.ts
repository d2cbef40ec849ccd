/** Connection failures that prove no byte of the request reached the machine. */
const neverReachedCodes = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'PROXY_CONNECT_TIMEOUT',
  'PROXY_BACKHAUL_DOWN',
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
