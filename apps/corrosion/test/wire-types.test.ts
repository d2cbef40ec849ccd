// The wire codecs on the generated static code: every sync and SWIM message comes back as it was
// sent, a message the build does not know is refused, and a field that does not match the .proto
// is a type error (the @ts-expect-error lines fail `tsc --noEmit` in `npm test` if it is not).
import { describe, expect, it } from 'vitest';
import {
  decodeSyncMessage,
  encodeSyncMessage,
  type SyncMessage,
} from '../src/replication/codec.js';
import { decodeSwim, encodeSwim, type SwimMessage } from '../src/swim/messages.js';
import { wire } from '../src/transport/wire.js';

const actorId = Buffer.alloc(16, 5);

describe('the sync messages', () => {
  it('come back as they were sent: state with gaps and partials, a changeset, done', () => {
    const messages: SyncMessage[] = [
      {
        state: {
          actorId,
          actors: [
            {
              actorId: Buffer.alloc(16, 6),
              head: 2 ** 40,
              gaps: [[3, 9]],
              partials: [{ version: 12, lastSeq: 30, missing: [[4, 7]] }],
            },
          ],
          graceMs: 2_500,
        },
      },
      {
        changeset: {
          actorId,
          version: 7,
          changes: [
            {
              table: 'machines',
              pk: Buffer.from([1, 2]),
              cid: 'state',
              val: 2n ** 62n,
              col_version: 3,
              db_version: 7,
              site_id: actorId,
              cl: 1,
              seq: 0,
              ts: 1_700_000_000_000,
            },
          ],
          seqs: [0, 0],
          lastSeq: 0,
          ts: 1_700_000_000_000,
        },
      },
      { done: true },
    ];
    for (const message of messages)
      expect(decodeSyncMessage(encodeSyncMessage(message))).toEqual(message);
  });

  it('refuses a message with none of state, changeset and done', () => {
    expect(() => decodeSyncMessage(new Uint8Array())).toThrow(/no content/);
  });
});

describe('the SWIM messages', () => {
  it('come back as they were sent, every kind and member state', () => {
    const member = { actorId: 'b'.repeat(32), addr: '127.0.0.1:9', ts: 1_700_000_000_123 };
    for (const kind of Object.keys(wire.swim.Kind).filter((name) => Number.isNaN(Number(name)))) {
      const message: SwimMessage = {
        kind: kind as SwimMessage['kind'],
        from: { actorId: 'a'.repeat(32), addr: '127.0.0.1:8', ts: 1_700_000_000_000 },
        incarnation: 4,
        probe: 2 ** 33,
        target: member,
        origin: undefined,
        updates: (['alive', 'suspect', 'down'] as const).map((state) => ({
          member,
          incarnation: 2,
          state,
        })),
      };
      expect(decodeSwim(encodeSwim(message))).toEqual(message);
    }
  });

  it('refuses a kind this build does not know', () => {
    const bytes = wire.swim.SwimMessage.encode({ kind: 99 as wire.swim.Kind }).finish();
    expect(() => decodeSwim(bytes)).toThrow(/unknown SWIM message kind 99/);
  });
});

describe('the generated types', () => {
  it('make a field that does not match the .proto a type error', () => {
    const frame: wire.transport.IFrame = {
      cluster_id: 'fleet',
      // @ts-expect-error: the body is bytes, not a string
      body: 'not bytes',
    };
    // @ts-expect-error: Changeset has no field `actor` (it is `actor_id`)
    const changeset: wire.replication.IChangeset = { actor: actorId };
    // What tsc checks is above; at run time the objects are only what was written.
    expect([frame.body, changeset]).toEqual(['not bytes', { actor: actorId }]);
  });
});
