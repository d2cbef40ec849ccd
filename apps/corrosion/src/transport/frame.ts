import { createHmac, timingSafeEqual } from 'node:crypto';
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

/**
 * The bytes a frame's MAC covers before its body, the cluster id then the channel, by cluster id
 * and channel: looked up, not built, per frame.
 */
const prefixes = new Map<string, Map<number, Buffer>>();

function prefixOf(clusterId: string, channel: number): Buffer {
  let byChannel = prefixes.get(clusterId);
  if (byChannel === undefined) {
    if (prefixes.size >= 64) prefixes.clear(); // a bound; an agent has one cluster id
    byChannel = new Map();
    prefixes.set(clusterId, byChannel);
  }
  let prefix = byChannel.get(channel);
  if (prefix === undefined) {
    prefix = Buffer.concat([Buffer.from(clusterId, 'utf8'), Buffer.of(channel)]);
    byChannel.set(channel, prefix);
  }
  return prefix;
}

/**
 * HMAC-SHA256 of the cluster id, channel and body with the fleet key. One HMAC object per frame
 * with two updates measured cheaper (5.8–6.5 µs for a 300-byte body) than copying prepared
 * inner and outer hash states (9.2–10.2 µs: two hash objects and two digests per frame).
 */
function mac(key: Buffer, clusterId: string, channel: number, body: Uint8Array): Buffer {
  return createHmac('sha256', key).update(prefixOf(clusterId, channel)).update(body).digest();
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
