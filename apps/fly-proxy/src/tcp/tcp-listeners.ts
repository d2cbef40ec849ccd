import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { type SecureContext, TLSSocket } from 'node:tls';
import { chargeTunnel } from '../airtime/tunnel.js';
import { hopFor } from '../backhaul.js';
import type { Http1Relay } from '../http1/relay.js';
import type { ProxyDeps } from '../proxy-deps.js';
import { routeApp } from '../route-request.js';
import { proxyProtocolHeader } from './proxy-protocol.js';
import type { PublicPort } from './service-ports.js';

export interface TcpListenersOptions {
  /** Address the public ports are bound on. */
  bindHost: string;
  /** Public ports listened on at most (a fleet's rows cannot make the edge open thousands). */
  portsMax: number;
  connectTimeoutMs: number;
  /** A connection with no byte either way this long is closed (each side). */
  idleTimeoutMs: number;
  hostId: string | undefined;
}

/** A machine's end of a passed-through connection: a TCP socket, or a backhaul stream. */
type Pipe = Duplex & { setTimeout(ms: number, onTimeout: () => void): unknown };

type SniCallback = (
  name: string,
  done: (error: Error | null, context?: SecureContext) => void,
) => void;

/**
 * A listener for every public port a service names (see ServicePorts), with Fly's handlers:
 * none (the bytes passed through to a machine), `proxy_proto` (a PROXY v1 or v2 header first),
 * `tls` (terminated here with the fleet's certificates, then passed through), `http` (the HTTP/1.1
 * relay on that port, after `tls` when both are named). Each connection counts one unit of load
 * on its machine while it lasts.
 */
export class TcpListeners {
  readonly #servers = new Map<number, { server: Server; owner: PublicPort }>();
  #connections = 0;
  #refused = 0;

  constructor(
    private readonly deps: ProxyDeps,
    private readonly relay: Http1Relay,
    private readonly options: TcpListenersOptions,
    private readonly sniCallback: SniCallback | undefined,
  ) {}

  /** Opens listeners for new ports, closes those no service names any more. */
  sync(ports: ReadonlyMap<number, PublicPort>): void {
    for (const [port, { server, owner }] of this.#servers) {
      const now = ports.get(port);
      if (now === undefined) {
        this.#servers.delete(port);
        server.close();
      } else if (now !== owner) this.#servers.set(port, { server, owner: now });
    }
    for (const [port, owner] of ports) {
      if (this.#servers.has(port)) continue;
      if (this.#servers.size >= this.options.portsMax) {
        this.deps.logger.warn({ port, app: owner.app }, 'public port not opened: --tcp-ports-max');
        continue;
      }
      const server = createServer((socket) => this.#serve(port, socket));
      server.on('error', (error) => {
        this.deps.logger.warn({ err: error, port, app: owner.app }, 'public port cannot listen');
        this.#servers.delete(port);
      });
      server.listen(port, this.options.bindHost);
      this.#servers.set(port, { server, owner });
    }
  }

  stats(): { ports: number[]; connections: number; refused: number } {
    return {
      ports: [...this.#servers.keys()],
      connections: this.#connections,
      refused: this.#refused,
    };
  }

  close(): void {
    for (const { server } of this.#servers.values()) server.close();
    this.#servers.clear();
  }

  #serve(port: number, socket: Socket): void {
    const owner = this.#servers.get(port)?.owner;
    socket.on('error', () => socket.destroy());
    if (owner === undefined) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    if (!owner.handlers.includes('tls')) {
      this.#afterTls(owner, socket);
      return;
    }
    if (this.sniCallback === undefined) {
      this.#refuse(owner, socket, 'a tls port needs --tls-listen (the fleet CA and key)');
      return;
    }
    const secure = new TLSSocket(socket, {
      isServer: true,
      SNICallback: this.sniCallback,
      ALPNProtocols: owner.handlers.includes('http') ? ['http/1.1'] : [],
    });
    const handshake = setTimeout(() => secure.destroy(), this.options.idleTimeoutMs);
    secure.on('error', () => secure.destroy());
    secure.once('close', () => clearTimeout(handshake));
    secure.once('secure', () => {
      clearTimeout(handshake);
      this.#afterTls(owner, secure);
    });
  }

  #afterTls(owner: PublicPort, socket: Socket): void {
    if (owner.handlers.includes('http')) this.relay.serve(socket, owner.port);
    else void this.#passThrough(owner, socket);
  }

  async #passThrough(owner: PublicPort, client: Socket): Promise<void> {
    client.pause();
    const routing = routeApp(this.deps, owner.app, { port: owner.port });
    const routed = routing instanceof Promise ? await routing : routing;
    if (!routed.ok) {
      this.#refuse(owner, client, `${routed.code}: ${routed.message}`);
      return;
    }
    for (const candidate of routed.candidates) {
      const hop = hopFor(candidate, this.options.hostId);
      if (hop === undefined) continue;
      // Another host's machine: a CONNECT stream on the session to that host's backhaul.
      const machine = hop.viaBackhaul
        ? await this.#tunnel(hop.address, candidate.machine, owner.port)
        : await this.#connect(hop.address);
      if (machine === undefined) this.deps.catalog.machineUnreachable(candidate.machine.id);
      else this.deps.catalog.machineReachable(candidate.machine.id);
      if (machine === undefined || client.destroyed) {
        machine?.destroy();
        if (client.destroyed) return;
        continue;
      }
      const release = this.deps.catalog.begin(candidate.machine);
      this.#connections += 1;
      this.#join(owner, client, machine, () => {
        this.#connections -= 1;
        release();
      });
      return;
    }
    this.#refuse(owner, client, 'no machine of the app could be reached');
  }

  #join(owner: PublicPort, client: Socket, machine: Pipe, done: () => void): void {
    const refusal = chargeTunnel(this.relay.airtime, owner.app, client, machine);
    if (refusal !== undefined) {
      machine.destroy();
      done();
      this.#refuse(owner, client, `${refusal.code}: ${refusal.message}`);
      return;
    }
    if (owner.handlers.includes('proxy_proto')) {
      machine.write(
        proxyProtocolHeader(owner.proxyProtoVersion, {
          sourceAddress: client.remoteAddress ?? '',
          sourcePort: client.remotePort ?? 0,
          destinationAddress: client.localAddress ?? '',
          destinationPort: client.localPort ?? 0,
        }),
      );
    }
    for (const socket of [client, machine]) {
      socket.setTimeout(this.options.idleTimeoutMs, () => socket.destroy());
      socket.on('error', () => socket.destroy());
    }
    let closed = 0;
    const onClose = () => {
      closed += 1;
      if (closed === 1) {
        client.destroy();
        machine.destroy();
        done();
      }
    };
    client.once('close', onClose);
    machine.once('close', onClose);
    client.pipe(machine);
    machine.pipe(client);
    client.resume();
  }

  #tunnel(
    address: string,
    machine: { id: string; app: string; hostId: string },
    port: number,
  ): Promise<Pipe | undefined> {
    const backhauls = this.deps.backhauls;
    if (backhauls === undefined) return Promise.resolve(undefined);
    return backhauls.tunnel(address, machine.hostId, machine, port).then(
      (stream) => stream,
      (error: unknown) => {
        this.deps.logger.warn({ err: error, machine: machine.id }, 'backhaul tunnel failed');
        return undefined;
      },
    );
  }

  #connect(address: string): Promise<Socket | undefined> {
    const colon = address.lastIndexOf(':');
    const host = address.slice(0, colon).replace(/^\[|\]$/g, '');
    return new Promise((resolve) => {
      const socket = connect({ host, port: Number(address.slice(colon + 1)), noDelay: true });
      const timer = setTimeout(() => socket.destroy(), this.options.connectTimeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(socket);
      });
      socket.once('error', () => {
        clearTimeout(timer);
        resolve(undefined);
      });
      socket.once('close', () => resolve(undefined));
    });
  }

  #refuse(owner: PublicPort, socket: Socket, why: string): void {
    this.#refused += 1;
    this.deps.logger.warn(
      { port: owner.port, app: owner.app, why },
      'public port connection refused',
    );
    socket.destroy();
  }
}
