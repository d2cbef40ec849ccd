import type { ServiceSpec } from './model.js';
import type { ServiceRow } from './rows.js';

/** Distinct short values (states, orgs, networks) interned before we stop interning. */
const stringsMax = 10_000;

/**
 * Shares what repeats across machines: short strings, service configurations and the arrays of
 * services machines hold. Specs and arrays are held weakly, so an evicted app's configuration
 * goes away with its last machine.
 */
export class Interner {
  readonly #strings = new Map<string, string>();
  readonly #specs = new Map<string, WeakRef<ServiceSpec & { id: number }>>();
  readonly #lists = new Map<string, WeakRef<readonly ServiceSpec[]>>();
  readonly #specIds = new WeakMap<ServiceSpec, number>();
  #nextId = 1;
  readonly #forget = new FinalizationRegistry<{ map: 'specs' | 'lists'; key: string }>(
    ({ map, key }) => {
      const table = map === 'specs' ? this.#specs : this.#lists;
      if (table.get(key)?.deref() === undefined) table.delete(key);
    },
  );

  string(value: string): string {
    const known = this.#strings.get(value);
    if (known !== undefined) return known;
    if (this.#strings.size < stringsMax) this.#strings.set(value, value);
    return value;
  }

  spec(row: ServiceRow): ServiceSpec {
    const known = this.#specs.get(row.key)?.deref();
    if (known !== undefined) return known;
    const spec = Object.freeze({
      id: this.#nextId++,
      internalPort: row.internalPort,
      protocol: this.string(row.protocol),
      ports: Object.freeze(row.ports.map((port) => Object.freeze(port))),
      handlers: Object.freeze(row.handlers),
      http: row.handlers.includes('http'),
      forceHttps: row.ports.some((port) => port.forceHttps),
      concurrency: Object.freeze(row.concurrency),
      autostart: row.autostart,
      autostop: this.string(row.autostop),
      minMachinesRunning: row.minMachinesRunning,
    });
    this.#specIds.set(spec, spec.id);
    this.#specs.set(row.key, new WeakRef(spec));
    this.#forget.register(spec, { map: 'specs', key: row.key });
    return spec;
  }

  /** The shared array holding exactly these specs (sorted by internal port). */
  list(specs: ServiceSpec[]): readonly ServiceSpec[] {
    if (specs.length === 0) return emptyServices;
    specs.sort((a, b) => a.internalPort - b.internalPort);
    const key = specs.map((spec) => this.#specIds.get(spec) ?? 0).join(',');
    const known = this.#lists.get(key)?.deref();
    if (known !== undefined) return known;
    const list = Object.freeze(specs);
    this.#lists.set(key, new WeakRef(list));
    this.#forget.register(list, { map: 'lists', key });
    return list;
  }
}

export const emptyServices: readonly ServiceSpec[] = Object.freeze([]);
