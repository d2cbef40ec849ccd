/** What the proxy answers itself, as `{"error", "code"}` JSON; the README lists the same table. */
export const ProxyErrors = {
  PROXY_ERR_BAD_HOST: [400, 'the request has no usable Host header'],
  PROXY_ERR_NO_APP: [404, 'no app answers to this host'],
  PROXY_ERR_NOT_READY: [503, 'the routing table has not finished loading from corrosion'],
  PROXY_ERR_NO_MACHINE: [503, 'the app has no started, healthy machine with an HTTP service'],
  PROXY_ERR_UPSTREAM: [502, 'the machine could not be reached or broke the connection'],
  PROXY_ERR_UPSTREAM_TIMEOUT: [504, 'the machine did not answer in time'],
} as const;

export type ProxyErrorCode = keyof typeof ProxyErrors;
