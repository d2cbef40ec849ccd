/** Percentile (nearest rank) of a list of numbers, in the list's unit. */
export function percentile(values, fraction) {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1));
  return sorted[rank];
}

export function summary(values) {
  return { p50: percentile(values, 0.5), p99: percentile(values, 0.99), n: values.length };
}

/** Times `once` `count` times in sequence; milliseconds. */
export async function timeEach(count, once) {
  const samples = [];
  for (let index = 0; index < count; index++) {
    const started = performance.now();
    await once(index);
    samples.push(performance.now() - started);
  }
  return samples;
}

export const ms = (value) => `${value.toFixed(1)} ms`;
