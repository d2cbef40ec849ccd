// A receiver as it lives in the 20-agent run, measured alone: one agent process (started as the
// convergence bench starts its agents, ids prefixed `w-` so its follower sees them), its gossip
// socket sent broadcast datagrams of single-row writes at `rate` a second from `writers` origins
// (one write per datagram at random moments, or in the broadcasters' slots an origin's writes of
// one slot per datagram), and an updates stream following the table the way the convergence
// bench does (its `follow`). Prints the agent's CPU per received write beyond its idle rate: the
// wakeups, the frames, the apply batches and the stream's lines, which `bench/receive.mjs` (one
// process calling the functions in a loop) leaves out. CORROSION_PROFILE_DIR profiles the agent.
// The agent is measured warm, as agents run for days: V8 optimizes a function after enough work
// in it, and what runs once per apply batch (ten times a second) takes tens of seconds to get
// there. After 3 s of the same load this agent spent 82–92 µs per write, its compiler threads
// busy; after 10 s 44–59, after 20 s 40–63, after 40 s 42–44 (session 25, this machine).
import { createSocket } from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { procStat } from '@fleet/service';
import { broadcastEntrySize, encodeBroadcast, encodeChangeset } from '../dist/replication/codec.js';
import { versionChangesets } from '../dist/replication/serve.js';
import { Store } from '../dist/store.js';
import { Channel, encodeFrame } from '../dist/transport/frame.js';
import { follow, startAgent } from './convergence.mjs';

const schemaFile = fileURLToPath(new URL('./schema/machines.sql', import.meta.url));
const key = Buffer.from('bench-fleet-key-0123456789abcdef'); // the one startAgent gives its agents
const datagramBytes = 1400; // the broadcaster's (replicator.ts)
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * `writes` single-row writes from `writers` origins, interleaved: each the encoded changesets of
 * one version and the origin it came from.
 */
function writesOf(dir, writes, writers, prefix) {
  const schema = readFileSync(schemaFile, 'utf8');
  const origins = Array.from(
    { length: writers },
    (_, i) => new Store(join(dir, `origin-${prefix}${i}.db`), schema),
  );
  const encoded = [];
  for (let i = 0; i < writes; i++) {
    const origin = i % writers;
    const store = origins[origin];
    const { version } = store.transaction([
      {
        sql: "INSERT INTO machines (id, app, state) VALUES (?, 'bench', 'started')",
        params: [`${prefix}${i}`],
      },
    ]);
    const parts = [...versionChangesets(store, store.crdt.siteId, version, 1200)].map(
      encodeChangeset,
    );
    encoded.push({ origin, parts });
  }
  for (const store of origins) store.close();
  return encoded;
}

/** Broadcast frames of `writes` (one origin's), packed as the broadcaster packs them. */
function framesOf(writes) {
  const frames = [];
  let parts = [];
  let size = 0;
  const pack = () => {
    if (parts.length > 0)
      frames.push(encodeFrame(key, 'fleet', Channel.BROADCAST, encodeBroadcast(parts)));
    parts = [];
    size = 0;
  };
  for (const write of writes) {
    for (const part of write.parts) {
      if (size + broadcastEntrySize(part) > datagramBytes) pack();
      parts.push(part);
      size += broadcastEntrySize(part);
    }
  }
  pack();
  return frames;
}

/**
 * Sends `writes` to `port` at `rate` a second, due at random moments (exponential gaps, as
 * independent writers' commits are). With `slotMs`, what is due goes out at the end of its slot
 * of the wall clock, as the broadcaster sends (`localSlotMs`): an origin's writes of one slot in
 * one datagram. Else each write in a datagram of its own, within the millisecond.
 */
async function sendAtRate(socket, port, writes, rate, slotMs) {
  const started = performance.now();
  const due = [];
  let at = 0;
  for (let i = 0; i < writes.length; i++) {
    at += (-Math.log(1 - Math.random()) * 1000) / rate;
    due.push(at);
  }
  let next = 0;
  while (next < writes.length) {
    const now = performance.now() - started;
    const byOrigin = new Map();
    for (; next < writes.length && due[next] <= now; next++) {
      const write = writes[next];
      if (slotMs === 0)
        for (const frame of framesOf([write])) socket.send(frame, port, '127.0.0.1');
      else {
        const slot = byOrigin.get(write.origin) ?? [];
        byOrigin.set(write.origin, slot);
        slot.push(write);
      }
    }
    for (const slot of byOrigin.values())
      for (const frame of framesOf(slot)) socket.send(frame, port, '127.0.0.1');
    await sleep(slotMs > 0 ? slotMs - (Date.now() % slotMs) : 1);
  }
  return (performance.now() - started) / 1000;
}

export async function measureReceiveLive({
  rate = 475,
  seconds = 10,
  writers = 19,
  slotMs = 0,
  warmupSeconds = 20,
} = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-receive-live-'));
  let agent;
  let unfollow = () => undefined;
  const socket = createSocket('udp4');
  try {
    const node = await startAgent(dir, [], true); // profiled with CORROSION_PROFILE_DIR
    agent = node.agent;
    const port = Number(node.gossip.slice(node.gossip.lastIndexOf(':') + 1));
    const seen = new Map(); // id → when the updates stream showed it
    ({ abort: unfollow } = follow(node, seen));
    const warm = writesOf(dir, rate * warmupSeconds, writers, 'w-warm-');
    const writes = writesOf(dir, rate * seconds, writers, 'w-');
    await sendAtRate(socket, port, warm, rate, slotMs);
    while (seen.size < warm.length) await sleep(50);
    const cpu = () => procStat(agent.child.pid).cpuMs;
    const idleFrom = cpu();
    await sleep(2000);
    const idlePerMs = (cpu() - idleFrom) / 2000;
    const before = cpu();
    const started = performance.now();
    await sendAtRate(socket, port, writes, rate, slotMs);
    while (seen.size < warm.length + writes.length) await sleep(20);
    const elapsedMs = performance.now() - started;
    const spent = cpu() - before - idlePerMs * elapsedMs;
    return {
      rate,
      slotMs,
      warmupSeconds,
      writes: writes.length,
      cpuUsPerWrite: (spent * 1000) / writes.length,
    };
  } finally {
    unfollow();
    socket.close();
    await agent?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [rate = 475, seconds = 10, slotMs = 100, warmupSeconds = 20] = process.argv
    .slice(2)
    .map(Number);
  console.log(await measureReceiveLive({ rate, seconds, slotMs, warmupSeconds }));
}
