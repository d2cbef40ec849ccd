import type { CorrosionClient, WatchEvent } from '@fleet/corrosion-client';
import type { Logger } from '@fleet/service';

/** A public port some app's service names, and what the proxy does with its connections. */
export interface PublicPort {
  port: number;
  app: string;
  handlers: readonly string[];
  /** `proxy_proto_options.version` (Fly's default is v1). */
  proxyProtoVersion: 1 | 2;
}

/**
 * Which app owns each public port, from every `services` row (`SELECT app, ports`): the ports
 * the edge's own HTTP and TLS listeners stand for (80 with `http`, 443 with `tls` + `http`) are
 * left to them. A port named by two apps belongs to the first seen (an edge has one address;
 * Fly gives each app its own); the other is logged. Calls `changed` after each batch of rows.
 */
export class ServicePorts {
  readonly #rows = new Map<number, { app: string; ports: PublicPort[] }>();
  #ports = new Map<number, PublicPort>();

  constructor(
    private readonly logger: Logger,
    private readonly changed: (ports: ReadonlyMap<number, PublicPort>) => void,
  ) {}

  follow(client: CorrosionClient, signal: AbortSignal): Promise<void> {
    return client.watch('SELECT app, ports FROM services', (event) => this.apply(event), {
      signal,
    });
  }

  get ports(): ReadonlyMap<number, PublicPort> {
    return this.#ports;
  }

  apply(event: WatchEvent): void {
    if (event.type === 'reset') {
      this.#rows.clear();
      return;
    }
    if (event.type === 'row' || event.type === 'change') {
      const deleted = event.type === 'change' && event.kind === 'delete';
      if (deleted) this.#rows.delete(event.rowid);
      else {
        const [app, ports] = event.cells as [string, string];
        this.#rows.set(event.rowid, { app, ports: publicPorts(app, ports) });
      }
      if (event.type === 'row') return; // the initial rows end with 'ready'
    }
    this.#recompute();
  }

  #recompute(): void {
    const next = new Map<number, PublicPort>();
    for (const { app, ports } of this.#rows.values()) {
      for (const port of ports) {
        const owner = next.get(port.port);
        if (owner === undefined) next.set(port.port, port);
        else if (owner.app !== app)
          this.logger.warn({ port: port.port, app, owner: owner.app }, 'public port already taken');
      }
    }
    this.#ports = next;
    this.changed(next);
  }
}

/** The ports of one `services.ports` JSON that need a listener of their own. */
function publicPorts(app: string, json: string): PublicPort[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    return [];
  }
  if (!Array.isArray(parsed)) return [];
  const found: PublicPort[] = [];
  for (const entry of parsed as Record<string, unknown>[]) {
    const port = entry?.port;
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65_535) continue;
    const handlers = Array.isArray(entry.handlers)
      ? entry.handlers.filter((handler): handler is string => typeof handler === 'string')
      : [];
    const http = handlers.join() === 'http' && port === 80;
    const https = handlers.includes('tls') && handlers.includes('http') && port === 443;
    if (http || https) continue; // the edge's --listen and --tls-listen
    const options = entry.proxy_proto_options as { version?: unknown } | undefined;
    found.push({ port, app, handlers, proxyProtoVersion: options?.version === 'v2' ? 2 : 1 });
  }
  return found;
}
