// A peer that breaks the sync protocol (a sync that does not open with its state, a second state
// instead of changesets, an end before its done, a frame larger than the bound, a frame of
// another channel) or sends a SWIM datagram that does not decode gets its connection or datagram
// dropped, counted by the code in the error registry and logged with it, and the agent goes on
// serving: a well-formed sync and a write still work after them. A real agent process, spoken to
// over real TCP and UDP sockets with the fleet key.
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { connect } from 'node:net';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProtocolErrorCode } from '../src/errors.js';
import { encodeSyncMessage, type SyncMessage } from '../src/replication/codec.js';
import { syncWith } from '../src/replication/sync.js';
import { Channel, encodeFrame } from '../src/transport/frame.js';
import { eventually, exec, fleetKey, type Node, startNode, status } from './cluster.js';
import { openStore } from './crdt-helpers.js';

const key = Buffer.from(fleetKey);

/** A length-prefixed, authenticated frame as a sync stream carries it. */
function syncFrame(channel: Channel, body: Uint8Array): Buffer {
  const frame = encodeFrame(key, 'fleet', channel, body);
  const header = Buffer.alloc(4);
  header.writeUInt32BE(frame.length);
  return Buffer.concat([header, frame]);
}

const message = (value: SyncMessage) => syncFrame(Channel.SYNC, encodeSyncMessage(value));

/** A well-formed opening: a peer that has nothing. */
const opening: SyncMessage = { state: { actorId: Buffer.alloc(16, 7), actors: [], graceMs: 0 } };

/**
 * Opens a TCP connection to the agent's sync port, writes `bytes` and ends its side, then waits
 * for the agent to close the connection.
 */
async function speak(node: Node, bytes: Buffer): Promise<void> {
  const colon = node.gossip.lastIndexOf(':');
  const socket = connect(Number(node.gossip.slice(colon + 1)), node.gossip.slice(0, colon));
  socket.on('error', () => undefined); // the agent may reset it: the close is what we wait for
  await once(socket, 'connect');
  socket.end(bytes);
  socket.resume();
  await once(socket, 'close');
}

async function protocolErrors(node: Node): Promise<Partial<Record<ProtocolErrorCode, number>>> {
  const { replication } = (await status(node)) as unknown as {
    replication: { protocol_errors: Partial<Record<ProtocolErrorCode, number>> };
  };
  return replication.protocol_errors;
}

describe('a peer that breaks the gossip protocols', () => {
  let node: Node;
  const logLines: string[] = [];

  beforeAll(async () => {
    node = await startNode();
    const stdout = node.process.child.stdout;
    if (stdout) createInterface({ input: stdout }).on('line', (line) => logLines.push(line));
    await exec(node, ["INSERT INTO apps (name) VALUES ('before')"]);
  });
  afterAll(async () => {
    await node?.process.stop();
  });

  /** The agent's warning for a breach: its code, in a log line of its own. */
  const logged = (code: ProtocolErrorCode) =>
    logLines.some((line) => line.includes(`"code":"${code}"`));

  it('a sync that opens with anything but the sync state is dropped as CORRO_ERR_SYNC_OPENING', async () => {
    await speak(node, message({ done: true }));
    await eventually(async () =>
      expect(await protocolErrors(node)).toMatchObject({ CORRO_ERR_SYNC_OPENING: 1 }),
    );
    await eventually(async () => expect(logged('CORRO_ERR_SYNC_OPENING')).toBe(true));
  });

  it('a frame announced past 16 MiB is refused before it is read: CORRO_ERR_SYNC_FRAME_TOO_LARGE', async () => {
    const header = Buffer.alloc(4);
    header.writeUInt32BE(16 * 1024 * 1024 + 1);
    await speak(node, header);
    await eventually(async () =>
      expect(await protocolErrors(node)).toMatchObject({ CORRO_ERR_SYNC_FRAME_TOO_LARGE: 1 }),
    );
    await eventually(async () => expect(logged('CORRO_ERR_SYNC_FRAME_TOO_LARGE')).toBe(true));
  });

  it('a second sync state instead of changesets is CORRO_ERR_SYNC_UNEXPECTED', async () => {
    await speak(node, Buffer.concat([message(opening), message(opening)]));
    await eventually(async () =>
      expect(await protocolErrors(node)).toMatchObject({ CORRO_ERR_SYNC_UNEXPECTED: 1 }),
    );
  });

  it('a peer that ends the sync before its done is CORRO_ERR_SYNC_CLOSED_EARLY', async () => {
    await speak(node, message(opening));
    await eventually(async () =>
      expect(await protocolErrors(node)).toMatchObject({ CORRO_ERR_SYNC_CLOSED_EARLY: 1 }),
    );
  });

  it('a SWIM frame on a sync stream is CORRO_ERR_SYNC_WRONG_CHANNEL', async () => {
    await speak(node, syncFrame(Channel.SWIM, Buffer.from('not a sync')));
    await eventually(async () =>
      expect(await protocolErrors(node)).toMatchObject({ CORRO_ERR_SYNC_WRONG_CHANNEL: 1 }),
    );
  });

  it('an authenticated SWIM datagram that does not decode is CORRO_ERR_SWIM_MALFORMED', async () => {
    const socket = createSocket('udp4');
    try {
      const colon = node.gossip.lastIndexOf(':');
      const datagram = encodeFrame(key, 'fleet', Channel.SWIM, Buffer.from([0xff, 0xff, 0xff]));
      socket.send(datagram, Number(node.gossip.slice(colon + 1)), node.gossip.slice(0, colon));
      await eventually(async () =>
        expect(await protocolErrors(node)).toMatchObject({ CORRO_ERR_SWIM_MALFORMED: 1 }),
      );
    } finally {
      socket.close();
    }
  });

  it('keeps serving: a well-formed sync gets the rows, a write is taken', async () => {
    const store = openStore('CREATE TABLE apps (name TEXT NOT NULL PRIMARY KEY);');
    const options = (askedGraceMs: number) => ({
      store,
      key,
      clusterId: 'fleet',
      chunkBytes: 64 * 1024,
      versionsMax: 100,
      graceMs: 0,
      timeoutMs: 10_000,
      deliver: () => undefined, // nothing is applied: every sync finds the store still empty
      queued: () => [],
      askedGraceMs: () => askedGraceMs,
      answerFailed: () => undefined,
    });
    try {
      // Versions younger than the agent's grace period (1 s) are left to broadcast: poll.
      await eventually(async () => {
        expect((await syncWith(node.gossip, options(0))).received).toBeGreaterThan(0);
      });
      // A peer that asks for a longer grace (its broadcasts arrive late) is sent none of them.
      expect((await syncWith(node.gossip, options(600_000))).received).toBe(0);
    } finally {
      store.close();
    }
    expect(await exec(node, ["INSERT INTO apps (name) VALUES ('after')"])).toMatchObject({
      version: 2,
    });
  });
});
