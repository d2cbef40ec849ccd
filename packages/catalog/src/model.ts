import { inspect } from 'node:util';

/** What a service's concurrency counts: Fly's `concurrency.type`. */
export type ConcurrencyType = 'connections' | 'requests';

export interface Concurrency {
  type: ConcurrencyType;
  softLimit: number;
  /** `Infinity` when the service sets none (Fly's default for new apps). */
  hardLimit: number;
}

/** Fly's defaults when a service leaves `concurrency` (or a field of it) out. */
export const defaultConcurrency: Concurrency = Object.freeze({
  type: 'connections',
  softLimit: 20,
  hardLimit: Number.POSITIVE_INFINITY,
});

export interface PortSpec {
  port: number;
  handlers: readonly string[];
  forceHttps: boolean;
}

/**
 * One service of a machine (a `services` row without its machine): interned, so the machines
 * of an app that share a configuration share one object.
 */
export interface ServiceSpec {
  internalPort: number;
  protocol: string;
  ports: readonly PortSpec[];
  /** Every handler of every port (the row's `handlers` column). */
  handlers: readonly string[];
  /** True when one of the ports has the `http` handler. */
  http: boolean;
  /** True when one of the ports sets `force_https` (computed once: routing reads it per request). */
  forceHttps: boolean;
  concurrency: Concurrency;
  autostart: boolean;
  /** `off`, `stop` or `suspend` (Fly's `auto_stop_machines`). */
  autostop: string;
  minMachinesRunning: number;
}

export interface RegionEntry {
  code: string;
  name: string;
  lat: number;
  lon: number;
  /** False until a `regions` row names it (then distance is unknown). */
  known: boolean;
  /** Round trip estimated from the distance to this edge's region (see geo.ts). */
  estimatedRttMs: number;
}

export interface HostEntry {
  id: string;
  region: string;
  role: string;
  backhaulAddr: string | null;
  status: string;
  /** Measured from this edge (the least of the last 30 s), or -1 until a measurement exists. */
  rttMs: number;
  /** False until a `hosts` row names it. */
  known: boolean;
}

/**
 * A machine as routing needs it. One object per machine, kept small: strings that repeat
 * (app, state) are interned, region and host are shared entries, services an interned array.
 * Load counters live here so route() reads them without a lookup.
 */
export class MachineEntry {
  /** Local in-flight units (requests or connections, per the service's concurrency type). */
  load = 0;
  /** Load a backhaul reported for this machine; trusted until `remoteUntilTick`. */
  remoteLoad = 0;
  remoteUntilTick = 0;
  /** Reported unreachable (a refused or timed-out connect) until this tick; 0: reachable. */
  unreachableUntilTick = 0;
  /** Index in its app's machine array (swap-remove). */
  slot = -1;
  /** Names of critical health checks, or null (almost always). */
  critical: string[] | null = null;

  constructor(
    readonly id: string,
    public app: string,
    public state: string,
    public privateAddr: string | null,
    public instanceId: string,
    public regionEntry: RegionEntry,
    public hostEntry: HostEntry,
    public services: readonly ServiceSpec[],
  ) {}

  get region(): string {
    return this.regionEntry.code;
  }

  get hostId(): string {
    return this.hostEntry.id;
  }

  /** The backhaul address an edge dials for this machine (null when its host is unknown). */
  get backhaulAddr(): string | null {
    return this.hostEntry.backhaulAddr;
  }

  get healthy(): boolean {
    return this.critical === null;
  }

  toJSON(): object {
    return {
      id: this.id,
      app: this.app,
      state: this.state,
      privateAddr: this.privateAddr,
      instanceId: this.instanceId,
      region: this.region,
      hostId: this.hostId,
      hostStatus: this.hostEntry.status,
      hostRttMs: this.hostEntry.rttMs,
      load: this.load,
      critical: this.critical,
      unreachable: this.unreachableUntilTick !== 0,
    };
  }
}

/**
 * A TLS certificate for one hostname. The sealed key and the PEM never reach a log: JSON and
 * util.inspect show only the hostname, app and expiry.
 */
export class Certificate {
  constructor(
    readonly hostname: string,
    readonly app: string,
    readonly certPem: string,
    readonly sealedKey: string,
    readonly notAfter: string,
  ) {}

  toJSON(): object {
    return { hostname: this.hostname, app: this.app, notAfter: this.notAfter, sealed: true };
  }

  [inspect.custom](): string {
    return `Certificate(${this.hostname}, app ${this.app}, not after ${this.notAfter})`;
  }
}

/** Everything the Catalog holds about one app (in one shard). */
export class AppEntry {
  org = '';
  network = '';
  /** True once an `apps` row named it (machines may arrive first). */
  known = false;
  readonly machines: MachineEntry[] = [];
  hostnames: string[] = [];
  certificates: Map<string, Certificate> | null = null;
  /** Last use, in the Catalog's tick (for LRU eviction in lazy mode). */
  usedTick = 0;

  constructor(readonly name: string) {}
}
