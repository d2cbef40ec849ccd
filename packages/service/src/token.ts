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
  const match = /^(\S+)\s+(.+)$/.exec(header ?? '');
  if (!match || !schemes.some((scheme) => scheme.toLowerCase() === match[1]!.toLowerCase())) {
    return false;
  }
  const given = Buffer.from(match[2]!);
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
