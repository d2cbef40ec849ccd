// Receiving: CPU per received write on one node, the way a broadcast arrives in the 20-agent run
// (one single-row write per changeset, one changeset per datagram): the frame authenticated,
// the broadcast decoded, the changesets applied in batches of ten (what the apply queue gathers
// in its 20 ms at that rate). Issue 14's target: at most 60 µs per received write.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyChangesets } from '../dist/replication/apply.js';
import {
  broadcastEntrySize,
  decodeBroadcast,
  encodeBroadcast,
  encodeChangeset,
} from '../dist/replication/codec.js';
import { versionChangesets } from '../dist/replication/serve.js';
import { Store } from '../dist/store.js';
import { Channel, decodeFrame, encodeFrame } from '../dist/transport/frame.js';
import { insert, row, schema } from './apply.mjs';

const key = Buffer.from('bench-fleet-key-0123456789abcdef');
/** The broadcaster's datagram body bound (replicator.ts). */
const datagramBytes = 1400;

function cpuUs() {
  const { user, system } = process.cpuUsage();
  return user + system;
}

/**
 * Datagrams of single-row writes, as the writer sends them: `perDatagram` writes' changesets in
 * one datagram (one frame, one MAC), up to the broadcaster's 1400-byte bound.
 */
function datagrams(dir, writes, perDatagram) {
  const origin = new Store(join(dir, `origin-${writes}.db`), schema);
  const frames = [];
  let parts = [];
  let size = 0;
  const send = () => {
    if (parts.length === 0) return;
    frames.push(encodeFrame(key, 'fleet', Channel.BROADCAST, encodeBroadcast(parts)));
    parts = [];
    size = 0;
  };
  for (let i = 0; i < writes; i++) {
    const { version } = origin.transaction([{ sql: insert, params: row(i) }]);
    for (const set of versionChangesets(origin, origin.crdt.siteId, version, 1300)) {
      const encoded = encodeChangeset(set);
      if (size + broadcastEntrySize(encoded) > datagramBytes) send();
      parts.push(encoded);
      size += broadcastEntrySize(encoded);
    }
    if ((i + 1) % perDatagram === 0) send();
  }
  send();
  origin.close();
  return frames;
}

function receive(dir, frames, writes, batch) {
  const receiver = new Store(join(dir, `receiver-${Math.random()}.db`), schema);
  const started = cpuUs();
  let pending = [];
  for (const frame of frames) {
    const opened = decodeFrame(key, 'fleet', frame);
    pending.push(...decodeBroadcast(opened.body));
    if (pending.length >= batch) {
      applyChangesets(receiver, pending);
      pending = [];
    }
  }
  applyChangesets(receiver, pending);
  const spent = cpuUs() - started;
  const merged = receiver.db.prepare('SELECT count(*) AS n FROM machines').get().n;
  receiver.close();
  if (merged !== writes) throw new Error(`merged ${merged} rows of ${writes}`);
  return spent / writes;
}

export function measureReceive(writes = 20_000, batch = 10, perDatagram = 1) {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-corrosion-bench-'));
  try {
    const warmUp = datagrams(dir, 2_000, perDatagram);
    receive(dir, warmUp, 2_000, batch);
    const frames = datagrams(dir, writes, perDatagram);
    return { writes, batch, perDatagram, cpuUsPerWrite: receive(dir, frames, writes, batch) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [batch = 10, perDatagram = 1] = process.argv.slice(2).map(Number);
  console.log(measureReceive(20_000, batch, perDatagram));
}
