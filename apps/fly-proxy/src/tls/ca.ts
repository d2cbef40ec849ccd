import {
  createPrivateKey,
  type KeyObject,
  randomBytes,
  webcrypto,
  X509Certificate,
} from 'node:crypto';
import { TlsError } from './tls-error.js';
import { ecdsaP256, x509 } from './x509.js';

export interface IssuedCertificate {
  hostname: string;
  /** The leaf alone (PEM); clients trust the fleet CA itself. */
  certPem: string;
  /** PKCS#8 PEM of the leaf's key: seal it before it leaves the process. */
  keyPem: string;
  notAfter: Date;
}

/** Leaves start this far in the past, so a client whose clock lags a little still accepts them. */
const backdateMs = 5 * 60_000;

/**
 * The fleet's own certificate authority: an ECDSA P-256 key and a self-signed CA certificate that
 * every edge shares (see the README, "TLS and certificates", for how they are distributed). It
 * signs short-lived leaf certificates on demand.
 */
export class FleetCa {
  /** The CA certificate, parsed by Node (for `checkIssued`, `verify`). */
  readonly certificate: X509Certificate;

  private constructor(
    readonly certPem: string,
    private readonly issuer: x509.X509Certificate,
    private readonly signingKey: webcrypto.CryptoKey,
  ) {
    this.certificate = new X509Certificate(certPem);
  }

  /** A new CA (key and self-signed certificate), valid for `validityDays`. */
  static async generate(
    options: { commonName?: string; validityDays?: number } = {},
  ): Promise<{ ca: FleetCa; keyPem: string }> {
    const keys = await webcrypto.subtle.generateKey(ecdsaP256, true, ['sign', 'verify']);
    const now = Date.now();
    const certificate = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serialNumber(),
      name: `CN=${options.commonName ?? 'Fleet CA'}`,
      notBefore: new Date(now - backdateMs),
      notAfter: new Date(now + (options.validityDays ?? 3650) * 86_400_000),
      keys,
      signingAlgorithm: ecdsaP256,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
          true,
        ),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
    const keyPem = x509.PemConverter.encode(pkcs8, 'PRIVATE KEY');
    return { ca: new FleetCa(certificate.toString('pem'), certificate, keys.privateKey), keyPem };
  }

  /** Loads a CA from PEM; refuses a certificate that is not a CA, or a key that is not its own. */
  static async fromPem(certPem: string, keyPem: string): Promise<FleetCa> {
    let key: KeyObject;
    let parsed: X509Certificate;
    try {
      key = createPrivateKey(keyPem);
      parsed = new X509Certificate(certPem);
    } catch (error) {
      throw new TlsError('TLS_ERR_CA', 'the CA certificate or key is not valid PEM', {
        cause: error,
      });
    }
    if (!parsed.ca) throw new TlsError('TLS_ERR_CA', `${parsed.subject} is not a CA certificate`);
    if (!parsed.checkPrivateKey(key)) {
      throw new TlsError('TLS_ERR_CA', 'the CA key does not belong to the CA certificate');
    }
    if (key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
      throw new TlsError('TLS_ERR_CA', 'the CA key must be ECDSA P-256');
    }
    const der = key.export({ format: 'der', type: 'pkcs8' });
    const signingKey = await webcrypto.subtle.importKey('pkcs8', der, ecdsaP256, false, ['sign']);
    return new FleetCa(certPem, new x509.X509Certificate(certPem), signingKey);
  }

  /** A leaf for one DNS name: new P-256 key, SAN dNSName, serverAuth, valid `validityMs`. */
  async issue(hostname: string, validityMs: number): Promise<IssuedCertificate> {
    const keys = await webcrypto.subtle.generateKey(ecdsaP256, true, ['sign', 'verify']);
    const now = Date.now();
    const notAfter = new Date(Math.floor((now + validityMs) / 1000) * 1000);
    const leaf = await x509.X509CertificateGenerator.create({
      serialNumber: serialNumber(),
      subject: `CN=${hostname}`,
      issuer: this.issuer.subject,
      notBefore: new Date(now - backdateMs),
      notAfter,
      publicKey: keys.publicKey,
      signingKey: this.signingKey,
      signingAlgorithm: ecdsaP256,
      extensions: [
        new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: hostname }]),
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        await x509.AuthorityKeyIdentifierExtension.create(this.issuer, false),
      ],
    });
    const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
    return {
      hostname,
      certPem: leaf.toString('pem'),
      keyPem: x509.PemConverter.encode(pkcs8, 'PRIVATE KEY'),
      notAfter,
    };
  }
}

/** A positive 128-bit serial in hex (RFC 5280: at most 20 octets, positive, unpredictable). */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes.writeUInt8(bytes.readUInt8(0) & 0x7f, 0);
  return bytes.toString('hex');
}
