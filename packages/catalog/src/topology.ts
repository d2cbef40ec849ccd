import type { HostEntry, RegionEntry } from './model.js';
import type { HostRow, RegionRow } from './rows.js';
import { WindowedMin } from './windowed-min.js';

/** Estimated round trip for a region whose place is unknown: after every known one. */
export const unknownRttMs = 10_000;
const earthRadiusKm = 6_371;
/** Light in fibre covers about 200 km per ms one way: 1 ms of round trip per 100 km. */
const kmPerRttMs = 100;
/** A host's RTT is the least measured in this long (see WindowedMin for why not a mean). */
const rttWindowMs = 30_000;

/** Great-circle distance in km (haversine). */
export function distanceKm(a: { lat: number; lon: number }, b: { lat: number; lon: number }) {
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLon = (b.lon - a.lon) * rad;
  const h =
    Math.sin(dLat / 2) ** 2 +
    Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * earthRadiusKm * Math.asin(Math.min(1, Math.sqrt(h)));
}

/**
 * The global tables (regions, hosts) and what this edge measured (RTT per host). Entries are
 * shared by every machine that names them, so routing reads a machine's closeness without a
 * lookup; an entry a machine names before its row arrives is a placeholder (`known: false`).
 * The Catalog guards writes with its `global` lock.
 */
export class Topology {
  readonly regions = new Map<string, RegionEntry>();
  readonly hosts = new Map<string, HostEntry>();
  readonly #rttSamples = new Map<string, WindowedMin>();

  constructor(readonly edgeRegion: string) {}

  region(code: string): RegionEntry {
    let entry = this.regions.get(code);
    if (entry === undefined) {
      entry = { code, name: '', lat: 0, lon: 0, known: false, estimatedRttMs: 0 };
      entry.estimatedRttMs = this.#estimate(entry);
      this.regions.set(code, entry);
    }
    return entry;
  }

  host(id: string): HostEntry {
    let entry = this.hosts.get(id);
    if (entry === undefined) {
      entry = {
        id,
        region: '',
        role: 'worker',
        backhaulAddr: null,
        status: 'ready',
        rttMs: -1,
        known: false,
      };
      this.hosts.set(id, entry);
    }
    return entry;
  }

  putRegion(row: RegionRow): void {
    const entry = this.region(row.code);
    Object.assign(entry, { name: row.name, lat: row.lat, lon: row.lon, known: true });
    this.#reestimate(row.code === this.edgeRegion ? undefined : entry);
  }

  dropRegion(code: string): void {
    const entry = this.regions.get(code);
    if (entry === undefined) return;
    entry.known = false; // machines may still name it: keep the entry, forget the place
    this.#reestimate(code === this.edgeRegion ? undefined : entry);
  }

  putHost(row: HostRow): void {
    const entry = this.host(row.id);
    entry.region = row.region;
    entry.role = row.role;
    entry.backhaulAddr = row.backhaulAddr;
    entry.status = row.status;
    entry.known = true;
  }

  dropHost(id: string): void {
    const entry = this.hosts.get(id);
    if (entry === undefined) return;
    // Its machines' rows decide whether they run; a host without a row is not known to be down.
    Object.assign(entry, { backhaulAddr: null, status: 'ready', known: false });
  }

  /** Records a round trip measured from this edge to a host at `nowMs`. */
  recordRtt(hostId: string, rttMs: number, nowMs: number): void {
    if (!(rttMs >= 0) || !Number.isFinite(rttMs)) return;
    let samples = this.#rttSamples.get(hostId);
    if (samples === undefined) {
      samples = new WindowedMin(rttWindowMs);
      this.#rttSamples.set(hostId, samples);
    }
    this.host(hostId).rttMs = samples.add(rttMs, nowMs);
  }

  /** Re-estimates one region, or all of them when the edge's own place changed. */
  #reestimate(only: RegionEntry | undefined): void {
    if (only !== undefined) only.estimatedRttMs = this.#estimate(only);
    else for (const entry of this.regions.values()) entry.estimatedRttMs = this.#estimate(entry);
  }

  #estimate(entry: RegionEntry): number {
    if (entry.code === this.edgeRegion) return 0;
    const edge = this.regions.get(this.edgeRegion);
    if (!entry.known || edge === undefined || !edge.known) return unknownRttMs;
    return distanceKm(edge, entry) / kmPerRttMs;
  }
}
