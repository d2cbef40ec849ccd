import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { ProtocolError } from '../errors.js';
import type { Store } from '../store.js';
import { Channel, decodeFrame, encodeFrame } from '../transport/frame.js';
import { type Changeset, decodeSyncMessage, encodeSyncMessage, type SyncMessage } from './codec.js';
import { changesetsFor, type Queued, syncState } from './sync-needs.js';

export interface SyncOptions {
  store: Store;
  key: Buffer;
  clusterId: string;
  /** Bytes of changes per changeset sent. */
  chunkBytes: number;
  /** Versions sent per sync at most (newest first); the next round sends the rest. */
  versionsMax: number;
  /** Versions younger than this are left to broadcast (or than the peer asks, when longer). */
  graceMs: number;
  /**
   * The grace this node asks of its peers: longer than `graceMs` while its broadcasts arrive
   * late (under load a version can take longer than `graceMs` to arrive; sent again by sync, it
   * would only add to the load that delays it).
   */
  askedGraceMs(): number;
  /** Idle time after which a sync connection is dropped. */
  timeoutMs: number;
  /** Received changesets, in batches, for the apply queue. */
  deliver(sets: Changeset[]): void;
  /** What the apply queue holds now: reported as had, so no peer sends it again. */
  queued(): Iterable<Queued>;
  /** A sync this node answered failed (a ProtocolError when the peer broke the protocol). */
  answerFailed(error: unknown, peer: string): void;
}

export interface SyncResult {
  sent: number;
  received: number;
}

type SyncState = Extract<SyncMessage, { state: unknown }>['state'];

const frameBytesMax = 16 * 1024 * 1024;
const deliverBatch = 256;

/**
 * Anti-entropy sync over TCP (large syncs do not fit datagrams): the side that dials sends its
 * sync state, the other answers with its own, then each streams what the other lacks, newest
 * first, and ends with `done`. Every message is a length-prefixed, authenticated frame.
 */
export class SyncServer {
  private constructor(private readonly server: Server) {}

  static async listen(host: string, port: number, options: SyncOptions): Promise<SyncServer> {
    const server = createServer((socket) => {
      const peer = `${socket.remoteAddress}:${socket.remotePort}`;
      answer(socket, options).catch((error: unknown) => {
        options.answerFailed(error, peer);
        socket.destroy();
      });
    });
    server.listen(port, host);
    await once(server, 'listening');
    return new SyncServer(server);
  }

  async close(): Promise<void> {
    this.server.close();
    await once(this.server, 'close');
  }
}

async function answer(socket: Socket, options: SyncOptions): Promise<SyncResult> {
  idleTimeout(socket, options.timeoutMs);
  const frames = readFrames(socket, options);
  const first = await next(frames);
  if (!('state' in first)) {
    throw new ProtocolError('CORRO_ERR_SYNC_OPENING', 'a sync must open with the sync state');
  }
  await send(socket, options, { state: ownState(options) });
  return exchange(socket, frames, first.state, options);
}

/** Dials `addr` ("host:port") and syncs both ways. */
export async function syncWith(addr: string, options: SyncOptions): Promise<SyncResult> {
  const colon = addr.lastIndexOf(':');
  const socket = connect(Number(addr.slice(colon + 1)), addr.slice(0, colon));
  idleTimeout(socket, options.timeoutMs);
  try {
    await once(socket, 'connect');
    const frames = readFrames(socket, options);
    await send(socket, options, { state: ownState(options) });
    const reply = await next(frames);
    if (!('state' in reply)) {
      throw new ProtocolError(
        'CORRO_ERR_SYNC_OPENING',
        'the peer did not answer with its sync state',
      );
    }
    return await exchange(socket, frames, reply.state, options);
  } finally {
    socket.destroy();
  }
}

/** A sync connection idle for `timeoutMs` is dropped with CORRO_ERR_SYNC_TIMEOUT. */
function idleTimeout(socket: Socket, timeoutMs: number): void {
  socket.setTimeout(timeoutMs, () =>
    socket.destroy(
      new ProtocolError('CORRO_ERR_SYNC_TIMEOUT', `sync idle for ${timeoutMs} ms: dropped`),
    ),
  );
}

function ownState(options: SyncOptions): SyncState {
  return {
    actorId: options.store.crdt.siteId,
    actors: syncState(options.store, options.queued()),
    graceMs: Math.max(options.graceMs, options.askedGraceMs()),
  };
}

/** Sends what the peer lacks while receiving what we lack; both sides end with `done`. */
async function exchange(
  socket: Socket,
  frames: AsyncGenerator<SyncMessage>,
  peer: SyncState,
  options: SyncOptions,
): Promise<SyncResult> {
  const sending = (async () => {
    let sent = 0;
    for (const changeset of changesetsFor(
      options.store,
      peer.actors,
      options.chunkBytes,
      options.versionsMax,
      Math.max(options.graceMs, peer.graceMs),
    )) {
      await send(socket, options, { changeset });
      sent++;
    }
    await send(socket, options, { done: true });
    return sent;
  })();
  // When receiving fails first (the peer reset the connection), the send loop fails too with
  // nobody awaiting it: an unhandled rejection would end the agent. Its error is the same one.
  sending.catch(() => undefined);
  let received = 0;
  let batch: Changeset[] = [];
  for (;;) {
    const message = await next(frames);
    if ('done' in message) break;
    if (!('changeset' in message)) {
      throw new ProtocolError('CORRO_ERR_SYNC_UNEXPECTED', 'a sync state in the middle of a sync');
    }
    batch.push(message.changeset);
    received++;
    if (batch.length >= deliverBatch) {
      options.deliver(batch);
      batch = [];
    }
  }
  if (batch.length > 0) options.deliver(batch);
  return { sent: await sending, received };
}

async function send(socket: Socket, options: SyncOptions, message: SyncMessage): Promise<void> {
  const frame = encodeFrame(
    options.key,
    options.clusterId,
    Channel.SYNC,
    encodeSyncMessage(message),
  );
  const header = Buffer.alloc(4);
  header.writeUInt32BE(frame.length);
  socket.write(header);
  if (!socket.write(frame)) await once(socket, 'drain');
}

async function next(frames: AsyncGenerator<SyncMessage>): Promise<SyncMessage> {
  const { value, done } = await frames.next();
  if (done)
    throw new ProtocolError('CORRO_ERR_SYNC_CLOSED_EARLY', 'the peer closed the sync early');
  return value;
}

/** Length-prefixed frames off a socket, authenticated and decoded. */
async function* readFrames(socket: Socket, options: SyncOptions): AsyncGenerator<SyncMessage> {
  let buffered = Buffer.alloc(0);
  for await (const chunk of socket) {
    buffered = Buffer.concat([buffered, chunk as Buffer]);
    while (buffered.length >= 4) {
      const length = buffered.readUInt32BE(0);
      if (length > frameBytesMax) {
        throw new ProtocolError(
          'CORRO_ERR_SYNC_FRAME_TOO_LARGE',
          `a sync frame of ${length} bytes refused (at most ${frameBytesMax})`,
        );
      }
      if (buffered.length < 4 + length) break;
      const frame = buffered.subarray(4, 4 + length);
      buffered = buffered.subarray(4 + length);
      const decoded = decodeFrame(options.key, options.clusterId, frame);
      if ('rejected' in decoded) {
        throw new ProtocolError(
          'CORRO_ERR_SYNC_FRAME_REJECTED',
          `sync frame rejected: ${decoded.rejected}`,
        );
      }
      if (decoded.channel !== Channel.SYNC) {
        throw new ProtocolError(
          'CORRO_ERR_SYNC_WRONG_CHANNEL',
          'a non-sync frame on a sync stream',
        );
      }
      yield decodeSyncMessage(decoded.body);
    }
  }
}
