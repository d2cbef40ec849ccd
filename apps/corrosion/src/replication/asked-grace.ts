/** Versions younger than this are left to broadcast. */
export const graceMs = 1_000;
/** The longest grace a node asks for its lag: a lost version is still repaired within seconds. */
const laggedGraceMsMax = 3_000;
/**
 * The longest grace a node asks while datagrams wait unread in its socket: what is in there
 * arrived and needs no second copy, but one lost meanwhile is repaired only after this.
 */
const unreadGraceMsMax = 30_000;

/**
 * The grace a node asks of its peers in a sync (they leave out versions younger than it):
 * - twice the lag of its latest fresh changesets (`lagMs`, 0 when none were applied lately),
 *   up to a few seconds;
 * - while datagrams wait unread in its gossip socket, the time since it was last seen empty
 *   (`unreadForMs`, see unread-datagrams.ts) and `graceMs` more: whatever their versions' age,
 *   they are not lost, and sent again they would only add to the backlog of a node that is
 *   already behind.
 */
export function askedGraceMs(lagMs: number, unreadForMs: number): number {
  const lagged = Math.min(laggedGraceMsMax, 2 * lagMs);
  const unread = unreadForMs > 0 ? Math.min(unreadGraceMsMax, unreadForMs + graceMs) : 0;
  return Math.max(lagged, unread);
}
