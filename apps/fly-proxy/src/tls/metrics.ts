import { metrics } from '@opentelemetry/api';

/**
 * Every instrument of TLS termination and the connection guard, in one place. Attribute values
 * come from closed sets (error codes, reasons, listener names), never from what a client sends:
 * a server name never becomes a label.
 */
export function tlsMetrics() {
  const meter = metrics.getMeter('fleet.fly-proxy.tls');
  return {
    handshakesRefused: meter.createCounter('tls_handshakes_refused', {
      description: 'handshakes refused by the certificate store, by error code',
    }),
    handshakeErrors: meter.createCounter('tls_handshake_errors', {
      description: 'TLS handshakes that failed or timed out (tlsClientError), by error code',
    }),
    certificateLookups: meter.createCounter('tls_certificate_lookups', {
      description: 'certificates served, by where they came from: cache, store, issued',
    }),
    certificatesIssued: meter.createCounter('tls_certificates_issued', {
      description: 'leaf certificates issued by the fleet CA and written to corrosion',
    }),
    issueMs: meter.createHistogram('tls_certificate_issue_ms', {
      description: 'time to issue, seal and store one certificate',
      unit: 'ms',
    }),
    storedCertificatesRejected: meter.createCounter('tls_stored_certificates_rejected', {
      description:
        'certificates rows that could not be used (bad PEM, key mismatch, unseal failed)',
    }),
    connectionsClosed: meter.createCounter('proxy_connections_closed', {
      description:
        'connections the guard closed, by listener and reason: handshake_timeout, sniff_timeout, idle, no_progress',
    }),
    wakeupsWithoutProgress: meter.createCounter('proxy_wakeups_without_progress', {
      description: 'guard sweeps that saw bytes arrive on a connection with no request progress',
    }),
  };
}

export type TlsMetrics = ReturnType<typeof tlsMetrics>;
