import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { present } from '@fleet/service/invariant';
import { describe, expect, it } from 'vitest';
import { fairShares, nextBudget, unlimited } from '../src/airtime/host-budget.js';
import {
  loadBetween,
  ProcFormatError,
  parseNetDev,
  parseProcStat,
} from '../src/airtime/host-load.js';
import { parseOverrides } from '../src/airtime/limits.js';
import { TokenBucket } from '../src/airtime/token-bucket.js';
import { netDevText, procStatText } from './proc-fixture.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');
const fixture = (name: string) => readFileSync(join(fixtures, name), 'utf8');

const host = {
  cpuBusyRatioMax: 0.8,
  networkBytesPerSecondMax: 1_000_000,
  appFloorBytesPerSecond: 1_000,
};

// The pure parts of Airtime on fixture text and numbers: /proc parsing, the load between two
// samples, the budget's reaction to pressure, max-min fair shares, overrides, the bucket.
describe('airtime: reading /proc', () => {
  it('reads the aggregate cpu line of /proc/stat, softirq counted busy', () => {
    expect(parseProcStat(fixture('proc-stat.txt'))).toEqual({
      totalJiffies: 3378441 + 1046625 + 7365839 + 24117 + 44044,
      idleJiffies: 7365839 + 24117,
      softirqJiffies: 44044,
    });
  });

  it('sums every interface of /proc/net/dev but loopback', () => {
    expect(parseNetDev(fixture('proc-net-dev.txt'))).toEqual({
      receivedBytes: 987654321 + 1000000,
      transmittedBytes: 123456789 + 2000000,
    });
  });

  it('refuses text that is not /proc with a ProcFormatError naming the problem', () => {
    expect(() => parseProcStat('intr 1 2 3\n')).toThrow(ProcFormatError);
    expect(() => parseProcStat('cpu  1 2 x 4 5 6 7\n')).toThrow(/not counters/);
    expect(() => parseNetDev('Inter-|\n face |\n')).toThrow(/no interface/);
    expect(() => parseNetDev('  eth0: 1 2 3\n')).toThrow(/eth0/);
  });

  it('turns two samples into CPU ratios and network bytes per second', () => {
    const counters = {
      busyJiffies: 100,
      softirqJiffies: 10,
      idleJiffies: 100,
      receivedBytes: 0,
      transmittedBytes: 0,
    };
    const read = (each: typeof counters) => ({
      cpu: parseProcStat(procStatText(each)),
      network: parseNetDev(netDevText(each)),
    });
    const later = {
      busyJiffies: 190,
      softirqJiffies: 40,
      idleJiffies: 110,
      receivedBytes: 3_000,
      transmittedBytes: 1_000,
    };
    const load = loadBetween(read(counters), read(later), 2_000);
    expect(load.cpuBusyRatio).toBeCloseTo(0.9);
    expect(load.softirqRatio).toBeCloseTo(0.3);
    expect(load.networkBytesPerSecond).toBe(2_000);
    // Counters that went backwards (a remounted /proc) are no load, never a negative one.
    const back = loadBetween(read(later), read(counters), 1_000);
    expect(back).toEqual({ cpuBusyRatio: 0, softirqRatio: 0, networkBytesPerSecond: 0 });
  });
});

describe('airtime: the host budget', () => {
  const calm = { cpuBusyRatio: 0.2, softirqRatio: 0.01, networkBytesPerSecond: 10_000 };

  it('stays unlimited while the host has headroom', () => {
    expect(nextBudget(unlimited, calm, 500_000, host)).toEqual(unlimited);
  });

  it('shrinks from what the proxy moves in proportion to how far the host is over', () => {
    const busy = { cpuBusyRatio: 1, softirqRatio: 0.5, networkBytesPerSecond: 10_000 };
    const budget = nextBudget(unlimited, busy, 500_000, host);
    expect(budget.pressure).toEqual(['host_cpu']);
    expect(budget.bytesPerSecond).toBeCloseTo(400_000); // 0.8 / 1.0 of 500 kB/s
    const network = { ...calm, networkBytesPerSecond: 4_000_000 };
    expect(nextBudget(unlimited, network, 500_000, host)).toMatchObject({
      bytesPerSecond: 125_000,
      pressure: ['host_network'],
    });
  });

  it('keeps shrinking to the floor while another process holds the host over', () => {
    // The proxy yields, the host stays over: each sample takes at least 10 % more.
    const network = { ...calm, networkBytesPerSecond: 1_050_000 };
    let budget = nextBudget(unlimited, network, 100_000, host);
    const first = present(budget.bytesPerSecond, 'a budget once the host is over');
    for (let sample = 0; sample < 100; sample += 1)
      budget = nextBudget(budget, network, present(budget.bytesPerSecond, 'a budget'), host);
    expect(first).toBeLessThanOrEqual(90_000);
    expect(budget.bytesPerSecond).toBe(host.appFloorBytesPerSecond);
  });

  it('grows back once the pressure is gone, and is lifted when it no longer binds', () => {
    const busy = { cpuBusyRatio: 1, softirqRatio: 0.5, networkBytesPerSecond: 0 };
    let budget = nextBudget(unlimited, busy, 100_000, host);
    budget = nextBudget(budget, calm, 80_000, host);
    expect(budget.bytesPerSecond).toBeCloseTo(160_000);
    expect(budget.pressure).toEqual(['host_cpu']); // still below demand: the reason stays
    expect(nextBudget(budget, calm, 150_000, host).bytesPerSecond).toBeCloseTo(320_000);
    expect(nextBudget(budget, calm, 50_000, host)).toEqual(unlimited);
  });

  it('shares a budget max-min fairly: light apps untouched, the heaviest throttled first', () => {
    const demands = new Map([
      ['light', 10_000],
      ['medium', 100_000],
      ['heavy', 1_000_000],
      ['throttled', Number.POSITIVE_INFINITY],
    ]);
    const shares = fairShares(demands, 410_000, 1_000);
    expect(shares.has('light')).toBe(false);
    expect(shares.has('medium')).toBe(false);
    expect(shares.get('heavy')).toBeCloseTo(150_000);
    expect(shares.get('throttled')).toBeCloseTo(150_000);
    expect(fairShares(demands, 100, 1_000).get('light')).toBe(1_000); // never below the floor
  });
});

describe('airtime: limits', () => {
  it('reads per-app overrides, a burst left out being one second of the rate', () => {
    expect(parseOverrides('web=65536:131072, api=2048')).toEqual(
      new Map([
        ['web', { bytesPerSecond: 65536, burstBytes: 131072 }],
        ['api', { bytesPerSecond: 2048, burstBytes: 2048 }],
      ]),
    );
    expect(parseOverrides('')).toEqual(new Map());
  });

  it('refuses malformed overrides naming the entry', () => {
    expect(() => parseOverrides('web')).toThrow(/"web" is not app=bytesPerSecond/);
    expect(() => parseOverrides('Web!=2048')).toThrow(/not an app name/);
    expect(() => parseOverrides('web=10')).toThrow(/from 1024 bytes/);
    expect(() => parseOverrides('web=2048,web=4096')).toThrow(/given twice/);
  });

  it('a bucket charged past its tokens owes a debt that time repays at its rate', () => {
    const bucket = new TokenBucket(1_000, 1_000, 0);
    expect(bucket.take(500, 0)).toBe(0);
    expect(bucket.take(1_500, 0)).toBe(1_000); // 1000 bytes owed at 1000 B/s
    expect(bucket.take(0, 500)).toBe(500);
    bucket.refill(10_000);
    expect(bucket.tokens).toBe(1_000); // never more than the burst
    bucket.reshape(100, 50, 10_000);
    expect(bucket.tokens).toBe(50);
  });
});
