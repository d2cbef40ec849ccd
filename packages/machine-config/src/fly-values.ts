import { constants } from 'node:os';

const unitMs: Record<string, number> = {
  h: 3_600_000,
  m: 60_000,
  s: 1_000,
  ms: 1,
  us: 1e-3,
  µs: 1e-3,
  ns: 1e-6,
};
const goDuration = /^(?:\d+(?:\.\d+)?(?:h|ms|m|s|us|µs|ns))+$/;
const seconds = /^\d+(?:\.\d+)?$/;

/**
 * A duration as Fly's configs and clients write it, in milliseconds: a Go duration (`500ms`,
 * `10s`, `1m30s`, `1h0m0s`: what Go's `Duration.String` writes, so what fly-go sends) or a number
 * of seconds (a number, or its text). Undefined when it is neither (or negative).
 */
export function durationMs(value: number | string): number | undefined {
  if (typeof value === 'number')
    return Number.isFinite(value) && value >= 0 ? value * 1000 : undefined;
  if (seconds.test(value)) return Number(value) * 1000;
  if (!goDuration.test(value)) return undefined;
  let totalMs = 0;
  for (const [, amount, unit] of value.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/g))
    totalMs += Number(amount) * (unitMs[unit ?? 's'] ?? 0);
  return totalMs;
}

/**
 * A signal as Fly's configs and clients write it: a name in any case, with or without `SIG`
 * (`SIGTERM`, `term`), or its number (`15`). Undefined when it names no signal of this system.
 */
export function signalName(value: number | string): NodeJS.Signals | undefined {
  const signals = constants.signals as Record<string, number>;
  const text = String(value).toUpperCase();
  if (/^\d+$/.test(text)) {
    const number = Number(text);
    return Object.keys(signals).find((name) => signals[name] === number) as
      | NodeJS.Signals
      | undefined;
  }
  const name = text.startsWith('SIG') ? text : `SIG${text}`;
  return name in signals ? (name as NodeJS.Signals) : undefined;
}
