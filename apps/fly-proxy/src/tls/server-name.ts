import { TlsError } from './tls-error.js';

const label = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * The certificate name for a TLS server name: lower case, no trailing dot, and a valid DNS name
 * (RFC 1035 labels; no wildcard, no IP address, at most 253 characters). Anything else fails
 * the handshake before any lookup, so a client's junk never reaches corrosion or the CA.
 */
export function certificateName(servername: string | undefined): string {
  if (!servername) {
    throw new TlsError('TLS_ERR_NO_SNI', 'the client sent no server name');
  }
  const name = servername.toLowerCase().replace(/\.$/, '');
  const labels = name.split('.');
  if (name.length > 253 || labels.length < 2 || !labels.every((part) => label.test(part))) {
    throw new TlsError('TLS_ERR_BAD_SNI', `server name "${name.slice(0, 64)}" is not a DNS name`);
  }
  if (/^[0-9.]+$/.test(name)) {
    throw new TlsError('TLS_ERR_BAD_SNI', 'an IP address is not a server name');
  }
  return name;
}
