/** What the proxy answers itself, as `{"error", "code"}` JSON; the README lists the same table. */
export const ProxyErrors = {
  PROXY_ERR_BAD_HOST: [400, 'the request has no usable Host header'],
  PROXY_ERR_BAD_REQUEST: [400, 'the request is malformed or ambiguous (how its body is framed)'],
  PROXY_ERR_CLIENT_TIMEOUT: [408, 'the client did not send a whole request head in time'],
  PROXY_ERR_HEADERS_TOO_LARGE: [431, 'the request head is larger than the proxy accepts'],
  PROXY_ERR_NO_APP: [404, 'no app answers to this host'],
  PROXY_ERR_NOT_READY: [503, 'the routing table has not finished loading from corrosion'],
  PROXY_ERR_NO_MACHINE: [503, 'the app has no started, healthy machine with an HTTP service'],
  PROXY_ERR_UPSTREAM: [502, 'the machine could not be reached or broke the connection'],
  PROXY_ERR_UPSTREAM_TIMEOUT: [504, 'the machine did not answer in time'],
  PROXY_ERR_REPLAY: [
    502,
    'the machine asked for a replay the proxy cannot make (a malformed fly-replay, a body over 1 MB, another organization, too many replays)',
  ],
  PROXY_ERR_BACKHAUL_AUTH: [403, 'a backhaul request without the fleet-key token of an edge'],
  PROXY_ERR_NOT_ON_HOST: [404, 'the backhaul was asked for a machine that is not on its host'],
  PROXY_ERR_MACHINE_BUSY: [503, 'every connection to the machine stayed busy past the wait bound'],
  PROXY_ERR_OVERLOADED: [503, 'the admin listener has its maximum of requests in flight'],
  PROXY_ERR_AIRTIME_LIMIT: [
    503,
    'Airtime: the app is over its hard cap here (requests in flight, or a bandwidth debt past its burst)',
  ],
  PROXY_ERR_STRICT_LIMIT: [
    503,
    "a forced second instance (strict Airtime limits): the app is over this instance's requests or bandwidth cap",
  ],
} as const;

export type ProxyErrorCode = keyof typeof ProxyErrors;

/**
 * Errors of TLS termination and certificates (src/tls). They never become HTTP answers: a failed
 * handshake has no response, so they reach logs and metrics only. The README lists them too.
 */
export const TlsErrors = {
  TLS_ERR_CA: 'the fleet CA files are unreadable, do not match, or are not a CA',
  TLS_ERR_NO_SNI: 'the client sent no server name (no default certificate is ever served)',
  TLS_ERR_BAD_SNI: 'the server name is not a valid DNS name',
  TLS_ERR_UNKNOWN_SNI: 'no app answers to the server name',
  TLS_ERR_STORED_CERT: 'a certificates row cannot be used (bad PEM, key does not match, expired)',
  TLS_ERR_BUSY: 'too many certificate loads or issuances in flight; the handshake fails fast',
  TLS_ERR_ISSUANCE: 'issuing or storing a certificate failed',
} as const;

export type TlsErrorCode = keyof typeof TlsErrors;

/** The status the proxy answers for a code of its own; the catalog's codes are all 503. */
export function statusOfCode(code: string): number {
  return code in ProxyErrors ? ProxyErrors[code as ProxyErrorCode][0] : 503;
}
