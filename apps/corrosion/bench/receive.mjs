// Receiving: CPU per received write on one node, the way a broadcast arrives in the 20-agent run
// (one single-row write per changeset, one changeset per datagram): the frame authenticated,
// the broadcast decoded, the changesets applied in batches of ten (what the apply queue gathers
// in its 20 ms at that rate). Issue 14's target: at most 60 µs per received write.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyChangesets } from '../dist/replication/apply.js';
import { decodeBroadcast, encodeBroadcast, encodeChangeset } from '../dist/replication/codec.js';
import { versionChangesets } from '../dist/replication/serve.js';
import { Store } from '../dist/store.js';
import { Channel, decodeFrame, encodeFrame } from '../dist/transport/frame.js';
import { insert, row, schema } from './apply.mjs';

const key = Buffer.from('bench-fleet-key-0123456789abcdef');

function cpuUs() {
  const { user, system } = process.cpuUsage();
  return user + system;
}

/** Datagrams of one single-row write each, as the writer sends them. */
function datagrams(dir, writes) {
  const origin = new Store(join(dir, 'origin.db'), schema);
  const frames = [];
  for (let i = 0; i < writes; i++) {
    const { version } = origin.transaction([{ sql: insert, params: row(i) }]);
    const sets = versionChangesets(origin, origin.crdt.siteId, version, 1300);
    const body = encodeBroadcast(sets.map(encodeChangeset));
    frames.push(encodeFrame(key, 'fleet', Channel.BROADCAST, body));
  }
  origin.close();
  return frames;
}

function receive(dir, frames, batch) {
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
  if (merged !== frames.length) throw new Error(`merged ${merged} rows of ${frames.length}`);
  return spent / frames.length;
}

export function measureReceive(writes = 20_000, batch = 10) {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-corrosion-bench-'));
  try {
    const frames = datagrams(dir, writes);
    receive(dir, frames.slice(0, 2_000), batch); // warm-up
    return { writes, batch, cpuUsPerWrite: receive(dir, frames, batch) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(measureReceive());
