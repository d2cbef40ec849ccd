import type { MachineEntry } from '@fleet/catalog';
import { describe, expect, it } from 'vitest';
import { serviceAddress } from '../src/backhaul.js';

const machine = (privateAddr: string | null) => ({ privateAddr }) as MachineEntry;

// Where the proxy dials a machine for one of its services (infra/test/multi-service.test.ts
// runs it end to end on a real fleet).
describe('serviceAddress', () => {
  it("takes each service's internal port at a machine's own address", () => {
    expect(serviceAddress(machine('198.18.4.7:8080'), 7000)).toBe('198.18.4.7:7000');
    expect(serviceAddress(machine('[fdaa::3]:8080'), 5432)).toBe('[fdaa::3]:5432');
  });

  it("keeps a machine's one loopback port for every service", () => {
    expect(serviceAddress(machine('127.0.0.1:41234'), 7000)).toBe('127.0.0.1:41234');
    expect(serviceAddress(machine('[::1]:41234'), 7000)).toBe('[::1]:41234');
  });

  it('has none for a machine without an address', () => {
    expect(serviceAddress(machine(null), 7000)).toBeUndefined();
  });
});
