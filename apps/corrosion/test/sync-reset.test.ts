// A peer that resets a sync connection while this agent is still streaming changesets to it
// fails that sync and nothing else: the send loop's error (the reset, seen again when a write
// or a drain fails) is not left unhandled, which would end the agent process. Found when agents
// died under the 20-agent, 500 writes/s bench. A real client (syncWith) against a raw TCP peer.
import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeSyncMessage } from '../src/replication/codec.js';
import { syncWith } from '../src/replication/sync.js';
import type { Store } from '../src/store.js';
import { Channel, encodeFrame } from '../src/transport/frame.js';
import { machinesSchema, openStore } from './crdt-helpers.js';

const key = Buffer.alloc(32, 5);
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

function frame(message: Parameters<typeof encodeSyncMessage>[0]): Buffer {
  const body = encodeFrame(key, 'fleet', Channel.SYNC, encodeSyncMessage(message));
  const header = Buffer.alloc(4);
  header.writeUInt32BE(body.length);
  return Buffer.concat([header, body]);
}

function bigStore(): Store {
  const store = openStore(machinesSchema);
  cleanups.push(() => store.close());
  const padding = 'x'.repeat(200);
  for (let version = 0; version < 200; version++) {
    store.transaction(
      Array.from({ length: 100 }, (_, at) => ({
        sql: 'INSERT INTO machines (id, state, n) VALUES (?, ?, ?)',
        params: [`m-${version}-${at}`, padding, at],
      })),
    );
  }
  return store;
}

describe('a sync the peer resets mid-stream', () => {
  it('fails that sync alone: no unhandled rejection from the send loop', async () => {
    const store = bigStore();
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    cleanups.push(() => process.off('unhandledRejection', onUnhandled));
    const peer = createServer((socket: Socket) => {
      let bytes = 0;
      socket.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        // After the client's state: claim to have nothing, so it streams everything, then
        // reset once it is well under way (its writes are waiting for the socket to drain).
        if (bytes === chunk.length)
          socket.write(frame({ state: { actorId: key.subarray(0, 16), actors: [], graceMs: 0 } }));
        else if (bytes > 256 * 1024) {
          socket.pause();
          socket.resetAndDestroy();
        }
      });
      socket.on('error', () => undefined);
    });
    peer.listen(0, '127.0.0.1');
    await once(peer, 'listening');
    cleanups.push(() => peer.close());
    const { port } = peer.address() as { port: number };
    await expect(
      syncWith(`127.0.0.1:${port}`, {
        store,
        key,
        clusterId: 'fleet',
        chunkBytes: 1300,
        versionsMax: 5000,
        graceMs: 0,
        timeoutMs: 10_000,
        deliver: () => undefined,
        queued: () => [],
        askedGraceMs: () => 0,
        answerFailed: () => undefined,
      }),
    ).rejects.toThrow();
    // The send loop fails in the same socket 'error' event that failed the sync (its wait for
    // 'drain' rejects there), and Node reports a rejection nobody handles at the end of the tick
    // it happened in: one turn of the event loop later the report, if any, has been made. Not a
    // time: the next event on the loop's own ordered queue.
    await new Promise((resolve) => setImmediate(resolve));
    expect(unhandled).toEqual([]);
  });
});
