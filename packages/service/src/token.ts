import { timingSafeEqual } from 'node:crypto';

/**
 * True when an Authorization header carries `token` under one of `schemes` (compared in
 * constant time). Fly's clients send `Bearer <token>` or `FlyV1 <token>`.
 */
export function authorizationMatches(
  header: string | undefined,
  token: string,
  schemes: string[] = ['Bearer'],
): boolean {
  const [, scheme, credential] = /^(\S+)\s+(.+)$/.exec(header ?? '') ?? [];
  if (scheme === undefined || credential === undefined) return false;
  if (!schemes.some((one) => one.toLowerCase() === scheme.toLowerCase())) return false;
  const given = Buffer.from(credential);
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
