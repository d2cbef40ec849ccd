import { createHmac, timingSafeEqual } from 'node:crypto';
import { loadProto } from './proto.js';

const FrameType = loadProto('frame.proto').lookupType('corrosion.transport.Frame');

/** The protocols frames carry (frame.proto's enum). */
export const Channel = { SWIM: 1, BROADCAST: 2, SYNC: 3 } as const;
export type Channel = (typeof Channel)[keyof typeof Channel];

export type FrameRejection = 'cluster' | 'mac' | 'malformed';

function mac(key: Buffer, clusterId: string, channel: number, body: Uint8Array): Buffer {
  return createHmac('sha256', key)
    .update(Buffer.from(clusterId, 'utf8'))
    .update(Buffer.of(channel))
    .update(body)
    .digest();
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
  let frame: { cluster_id?: string; channel?: number; body?: Uint8Array; mac?: Uint8Array };
  try {
    frame = FrameType.decode(bytes) as typeof frame;
  } catch {
    return { rejected: 'malformed' };
  }
  const { cluster_id: clusterId = '', channel = 0, body = new Uint8Array(), mac: given } = frame;
  if (clusterId !== expectedClusterId) return { rejected: 'cluster' };
  if (channel < 1 || channel > 3) return { rejected: 'malformed' };
  const expected = mac(key, clusterId, channel, body);
  if (!given || given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return { rejected: 'mac' };
  }
  return { channel: channel as Channel, body };
}
