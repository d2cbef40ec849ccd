import { describe, expect, it } from 'vitest';
import { durationMs, signalName } from '../src/index.js';

describe('durations as Fly writes them', () => {
  it('reads Go durations and seconds', () => {
    expect(durationMs('500ms')).toBe(500);
    expect(durationMs('10s')).toBe(10_000);
    expect(durationMs('1m30s')).toBe(90_000);
    expect(durationMs('1h0m0s')).toBe(3_600_000);
    expect(durationMs('1.5s')).toBe(1_500);
    expect(durationMs('250us')).toBe(0.25);
    expect(durationMs(2)).toBe(2_000);
    expect(durationMs('3')).toBe(3_000);
    expect(durationMs('0')).toBe(0);
  });

  it('refuses what is neither', () => {
    for (const bad of ['', 's', '10 s', '-1s', '1d', 'ten', '1s2', -1, Number.NaN])
      expect(durationMs(bad)).toBeUndefined();
  });
});

describe('signals as Fly writes them', () => {
  it('reads names in any case, with or without SIG, and numbers', () => {
    expect(signalName('SIGTERM')).toBe('SIGTERM');
    expect(signalName('int')).toBe('SIGINT');
    expect(signalName(9)).toBe('SIGKILL');
    expect(signalName('15')).toBe('SIGTERM');
  });

  it('refuses what names no signal', () => {
    for (const bad of ['SIGNOPE', 'hup2', 999, '']) expect(signalName(bad)).toBeUndefined();
  });
});
