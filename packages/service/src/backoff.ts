/** A capped exponential backoff: the first delay, doubling per attempt, up to the cap. */
export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
}

/**
 * The delay before retry `attempt` (0: the first retry): `baseMs · 2^attempt`, capped at `maxMs`,
 * less a random share of up to half of it ("equal jitter"), so that many callers failing at the
 * same moment (machines of one host whose database went away, publishers behind one corrosion)
 * do not retry in step, and none retries sooner than half its backoff.
 */
export function backoffMs(attempt: number, policy: BackoffPolicy, random = Math.random): number {
  const cappedMs = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(attempt, 30));
  return cappedMs / 2 + random() * (cappedMs / 2);
}
