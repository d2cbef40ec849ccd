import { describe, expect, it } from 'vitest';
import { placeMachine, type WorkerHost } from '../src/placement.js';

const host = (
  id: string,
  region: string,
  machineCount: number,
  memoryFreeMb = 4096,
): WorkerHost => ({
  id,
  region,
  flyd_addr: `http://${id}`,
  machine_count: machineCount,
  cpus: 8,
  cpus_reserved: 0,
  memory_mb: 8192,
  memory_mb_reserved: 8192 - memoryFreeMb,
});

// Placement spreads machines over workers and fails clearly when a region is full (seed 002).
describe('placeMachine', () => {
  it('picks the least loaded worker in the region, at random among equals', () => {
    const hosts = [
      host('a', 'ams', 3),
      host('b', 'ams', 1),
      host('c', 'ams', 1),
      host('d', 'ord', 0),
    ];
    expect(placeMachine(hosts, { region: 'ams', memoryMb: 256 }, () => 0).id).toBe('b');
    expect(placeMachine(hosts, { region: 'ams', memoryMb: 256 }, () => 0.99).id).toBe('c');
    expect(placeMachine(hosts, { memoryMb: 256 }).id).toBe('d');
  });

  it('spreads a burst of creates instead of piling them on one worker', () => {
    const hosts = [host('a', 'ams', 0), host('b', 'ams', 0), host('c', 'ams', 0)];
    for (let i = 0; i < 9; i++)
      placeMachine(hosts, { region: 'ams', memoryMb: 256 }).machine_count++;
    expect(hosts.map((h) => h.machine_count)).toEqual([3, 3, 3]);
  });

  it('refuses a full region and names the regions with room', () => {
    const hosts = [host('a', 'ams', 0, 100), host('b', 'ord', 0), host('c', 'syd', 0)];
    expect(() => placeMachine(hosts, { region: 'ams', memoryMb: 256 })).toThrow(
      /insufficient_capacity: no worker in region ams.*regions with room: ord, syd/,
    );
    expect(() => placeMachine([], { memoryMb: 256 })).toThrow(/no region has room/);
  });
});
