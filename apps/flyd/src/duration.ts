const unitMs = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };
const goDuration = /^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$/;

/**
 * A Go-style duration (`500ms`, `10s`, `1m30s`, `1h0m0s`: what Go's `Duration.String` writes, so
 * what fly-go sends) or a number of seconds, in milliseconds.
 */
export function parseDurationMs(value: unknown, fallbackMs: number): number {
  if (value === undefined || value === null) return fallbackMs;
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value * 1000;
  const text = String(value);
  if (text === '0') return 0;
  if (!goDuration.test(text))
    throw new Error(`${JSON.stringify(value)} is not a duration like 10s`);
  let totalMs = 0;
  for (const [, amount, unit] of text.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g))
    totalMs += Number(amount) * unitMs[unit as keyof typeof unitMs];
  return totalMs;
}
