import { randomBytes } from 'node:crypto';
import { chmodSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';

/** Node's `ticketKeys`: 16 bytes of key name, 16 of HMAC secret, 16 of AES key. */
export const ticketKeysBytes = 48;

/**
 * The TLS session ticket keys every proxy generation of one watchdog shares, so a client that
 * resumes a session after a restart is resumed (no full handshake for every client at once).
 * Kept in `<state-dir>/tls-ticket-keys` (mode 0600, written aside and renamed); made anew when
 * missing, malformed or older than `rotateMs`.
 */
export function ensureTicketKeys(path: string, rotateMs: number): { ageMs: number } {
  try {
    const ageMs = Date.now() - statSync(path).mtimeMs;
    if (ageMs < rotateMs && readTicketKeys(path).length === ticketKeysBytes) return { ageMs };
  } catch {
    // missing or unreadable: made anew below
  }
  rotateTicketKeys(path);
  return { ageMs: 0 };
}

export function rotateTicketKeys(path: string): void {
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, randomBytes(ticketKeysBytes), { mode: 0o600 });
  chmodSync(temporary, 0o600); // an umask cannot widen it, but an existing file kept its mode
  renameSync(temporary, path);
}

/** Reads the keys; throws naming the file when it does not hold exactly 48 bytes. */
export function readTicketKeys(path: string): Buffer {
  const keys = readFileSync(path);
  if (keys.length !== ticketKeysBytes)
    throw new Error(
      `${path} holds ${keys.length} bytes, not the ${ticketKeysBytes} of ticket keys`,
    );
  return keys;
}
