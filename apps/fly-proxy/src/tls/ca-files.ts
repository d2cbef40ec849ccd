import { existsSync, linkSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { FleetCa } from './ca.js';
import { TlsError } from './tls-error.js';

export interface CaFiles {
  certFile: string;
  keyFile: string;
  /** Bound on waiting for another process that is creating the same files. */
  waitMs?: number;
}

/**
 * Loads the fleet CA from its two PEM files, creating both when neither exists (a local fleet's
 * first start; the launcher points every proxy at the same `.fleet/` files). Creation is safe
 * when several proxies start at once: each writes temporary files and links the key into place,
 * which fails for all but one; the others wait (bounded) for the winner's certificate.
 */
export async function loadOrCreateFleetCa(files: CaFiles): Promise<FleetCa> {
  const { certFile, keyFile } = files;
  if (!existsSync(certFile) && !existsSync(keyFile)) await createCaFiles(certFile, keyFile);
  const deadline = Date.now() + (files.waitMs ?? 5_000);
  while (!(existsSync(certFile) && existsSync(keyFile)) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  let certPem: string;
  let keyPem: string;
  try {
    certPem = readFileSync(certFile, 'utf8');
    keyPem = readFileSync(keyFile, 'utf8');
  } catch (error) {
    throw new TlsError('TLS_ERR_CA', `cannot read the CA files ${certFile}, ${keyFile}`, {
      cause: error,
    });
  }
  return FleetCa.fromPem(certPem, keyPem);
}

async function createCaFiles(certFile: string, keyFile: string): Promise<void> {
  const { ca, keyPem } = await FleetCa.generate();
  const suffix = `.${process.pid}.${Date.now()}.tmp`;
  writeFileSync(keyFile + suffix, keyPem, { mode: 0o600 });
  writeFileSync(certFile + suffix, ca.certPem, { mode: 0o644 });
  try {
    linkSync(keyFile + suffix, keyFile); // fails with EEXIST for every process but one
    linkSync(certFile + suffix, certFile);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    unlinkSync(keyFile + suffix);
    unlinkSync(certFile + suffix);
  }
}
