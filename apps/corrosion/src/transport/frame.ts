import { createHash, type Hash, timingSafeEqual } from 'node:crypto';
import { wire } from './wire.js';

const FrameType = wire.transport.Frame;

/** The protocols frames carry (frame.proto's enum: a value it does not have is a type error). */
export const Channel = { SWIM: 1, BROADCAST: 2, SYNC: 3 } as const satisfies Record<
  string,
  wire.transport.Channel
>;
const channels: readonly Channel[] = Object.values(Channel);
export type Channel = (typeof Channel)[keyof typeof Channel];

export type FrameRejection = 'cluster' | 'mac' | 'malformed';

/** SHA-256's block size: HMAC pads the key to it. */
const blockBytes = 64;

/**
 * HMAC-SHA256 with one fleet key, its inner and outer pads hashed once (RFC 2104): a frame's MAC
 * copies the two prepared hash states instead of setting up an HMAC, key and all, per frame.
 */
class FleetMac {
  readonly #inner: Hash;
  readonly #outer: Hash;

  constructor(key: Buffer) {
    const padded = Buffer.alloc(blockBytes);
    (key.length > blockBytes ? createHash('sha256').update(key).digest() : key).copy(padded);
    const pad = (byte: number) => padded.map((keyByte) => keyByte ^ byte);
    this.#inner = createHash('sha256').update(pad(0x36));
    this.#outer = createHash('sha256').update(pad(0x5c));
  }

  of(clusterId: string, channel: number, body: Uint8Array): Buffer {
    const inner = this.#inner
      .copy()
      .update(Buffer.from(clusterId, 'utf8'))
      .update(Buffer.of(channel))
      .update(body)
      .digest();
    return this.#outer.copy().update(inner).digest();
  }
}

/** One prepared MAC per key (an agent has one fleet key; tests use a few). */
const macs = new Map<Buffer, FleetMac>();

function mac(key: Buffer, clusterId: string, channel: number, body: Uint8Array): Buffer {
  let prepared = macs.get(key);
  if (prepared === undefined) {
    if (macs.size >= 64) macs.clear(); // a bound; an agent never comes near it
    prepared = new FleetMac(key);
    macs.set(key, prepared);
  }
  return prepared.of(clusterId, channel, body);
}

export function encodeFrame(
  key: Buffer,
  clusterId: string,
  channel: Channel,
  body: Uint8Array,
): Uint8Array {
  return FrameType.encode({
    cluster_id: clusterId,
    channel,
    body,
    mac: mac(key, clusterId, channel, body),
  }).finish();
}

/** Authenticates and opens a frame; frames of another cluster or with a bad MAC are refused. */
export function decodeFrame(
  key: Buffer,
  expectedClusterId: string,
  bytes: Uint8Array,
): { channel: Channel; body: Uint8Array } | { rejected: FrameRejection } {
  let frame: wire.transport.Frame;
  try {
    frame = FrameType.decode(bytes);
  } catch {
    return { rejected: 'malformed' };
  }
  const { cluster_id: clusterId, channel, body, mac: given } = frame;
  if (clusterId !== expectedClusterId) return { rejected: 'cluster' };
  const known = channels.find((candidate) => candidate === channel);
  if (known === undefined) return { rejected: 'malformed' };
  const expected = mac(key, clusterId, channel, body);
  if (!given || given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return { rejected: 'mac' };
  }
  return { channel: known, body };
}
