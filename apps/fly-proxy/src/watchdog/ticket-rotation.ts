import { rotateTicketKeys } from '../handoff/ticket-keys.js';

/**
 * Replaces the shared ticket keys every `rotateMs` (the first time when the file reaches that
 * age) and calls `rotated` so the running generations read them again. Node holds one ticket key
 * set per server: a session ticket issued before a rotation is not resumed after it (that client
 * makes a full handshake), which bounds how long one stolen key decrypts recorded sessions.
 */
export function scheduleRotation(
  path: string,
  rotateMs: number,
  ageMs: number,
  rotated: () => void,
): { stop(): void } {
  let timer = setTimeout(
    function rotate() {
      rotateTicketKeys(path);
      rotated();
      timer = setTimeout(rotate, rotateMs);
      timer.unref();
    },
    Math.max(0, rotateMs - ageMs),
  );
  timer.unref();
  return { stop: () => clearTimeout(timer) };
}
