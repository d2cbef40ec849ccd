import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import type { Logger } from '@fleet/service';
import { invariant } from '@fleet/service/invariant';
import { transportMetrics } from '../metrics.js';
import { type Channel, decodeFrame, encodeFrame, type FrameRejection } from './frame.js';
import { UnreadDatagrams } from './unread-datagrams.js';

/** Largest frame sent: under loopback's and most paths' limits without IP fragmentation games. */
export const datagramBytesMax = 60_000;

export type FrameHandler = (body: Uint8Array, from: string) => void;

/** Where a handler's failure goes (the frame is dropped either way). */
export type HandlerFailed = (error: unknown, from: string) => void;

/**
 * The gossip socket: authenticated frames over UDP, dispatched by channel. Frames of another
 * cluster, with a bad MAC or unparseable are dropped and counted, never handled.
 */
export class UdpTransport {
  readonly #handlers = new Map<Channel, FrameHandler>();
  readonly #metrics = transportMetrics();
  readonly rejections: Record<FrameRejection, number> = { cluster: 0, mac: 0, malformed: 0 };
  /** When set, every datagram is dropped (tests cut links with it). */
  paused = false;
  /** Peers cut off: nothing is sent to them or taken from them (a partition, or a quarantine). */
  readonly blocked = new Set<string>();
  #closed = false;
  /** Datagrams arrived and not yet read (see unread-datagrams.ts). */
  readonly unread: UnreadDatagrams;

  private constructor(
    private readonly socket: Socket,
    readonly addr: string,
    private readonly key: Buffer,
    private readonly clusterId: string,
    private readonly logger: Logger,
    private readonly handlerFailed: HandlerFailed,
  ) {
    this.unread = new UnreadDatagrams(addr);
    socket.on('message', (bytes, from) => this.#receive(bytes, `${from.address}:${from.port}`));
    socket.on('error', (error) => logger.warn({ err: error }, 'gossip socket error'));
  }

  static async bind(options: {
    host: string;
    port: number;
    key: Buffer;
    clusterId: string;
    logger: Logger;
    /** Default: logged as a warning. */
    handlerFailed?: HandlerFailed;
  }): Promise<UdpTransport> {
    const socket = createSocket({ type: 'udp4', recvBufferSize: 8 << 20, sendBufferSize: 8 << 20 });
    socket.bind(options.port, options.host);
    await once(socket, 'listening');
    const bound = socket.address();
    return new UdpTransport(
      socket,
      `${bound.address}:${bound.port}`,
      options.key,
      options.clusterId,
      options.logger,
      options.handlerFailed ??
        ((error, from) => options.logger.warn({ err: error, from }, 'gossip frame handler failed')),
    );
  }

  on(channel: Channel, handler: FrameHandler): void {
    this.#handlers.set(channel, handler);
  }

  send(addr: string, channel: Channel, body: Uint8Array): void {
    this.sendMany([addr], channel, body);
  }

  /** One frame to several peers: encoded and authenticated once. */
  sendMany(addrs: string[], channel: Channel, body: Uint8Array): void {
    if (this.paused || this.#closed) return;
    const to = addrs.filter((addr) => !this.blocked.has(addr));
    if (to.length === 0) return;
    const frame = encodeFrame(this.key, this.clusterId, channel, body);
    // Broadcasts are cut to a path MTU and SWIM messages carry a bounded piggyback: a caller
    // that builds a larger frame is a bug, not a peer's doing.
    invariant(
      frame.length <= datagramBytesMax,
      `a ${frame.length}-byte frame does not fit a datagram`,
    );
    // No callback per send: with one, node schedules a completion call per datagram (19 per
    // broadcast in a cluster of 20). A send that fails is a datagram lost, as on the wire:
    // SWIM probes again and sync repairs what a broadcast missed.
    for (const addr of to) {
      const colon = addr.lastIndexOf(':');
      this.socket.send(frame, Number(addr.slice(colon + 1)), addr.slice(0, colon));
    }
  }

  close(): void {
    this.#closed = true;
    this.socket.close();
  }

  #receive(bytes: Buffer, from: string): void {
    if (this.paused || this.blocked.has(from)) return;
    const frame = decodeFrame(this.key, this.clusterId, bytes);
    if ('rejected' in frame) {
      this.rejections[frame.rejected]++;
      this.#metrics.framesRejected.add(1, { reason: frame.rejected });
      this.logger.debug({ from, reason: frame.rejected }, 'gossip frame rejected');
      return;
    }
    try {
      this.#handlers.get(frame.channel)?.(frame.body, from);
    } catch (error) {
      this.handlerFailed(error, from);
    }
  }
}
