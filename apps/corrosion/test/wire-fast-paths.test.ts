// The receive path's pieces against the libraries and format they stand for: the frame MAC is
// HMAC-SHA256 of cluster id, channel and body (what every peer checks), and the hand decoder of a Broadcast gives exactly
// what protobufjs' generated decoder gives, on random changesets (every SqlValue kind, integers
// past 2^53 and negative ones included).
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type Changeset,
  decodeBroadcast,
  decodeChangeset,
  encodeBroadcast,
  encodeChangeset,
} from '../src/replication/codec.js';
import { Channel, decodeFrame, encodeFrame } from '../src/transport/frame.js';
import { wire } from '../src/transport/wire.js';

describe('the frame MAC', () => {
  it('is HMAC-SHA256 of cluster id, channel and body, for keys shorter and longer than a block', () => {
    for (const key of [Buffer.alloc(16, 7), Buffer.alloc(64, 9), Buffer.alloc(100, 3)]) {
      const body = Buffer.from('a body');
      const frame = encodeFrame(key, 'fleet', Channel.BROADCAST, body);
      const { mac } = wire.transport.Frame.decode(frame);
      const expected = createHmac('sha256', key)
        .update('fleet')
        .update(Buffer.of(Channel.BROADCAST))
        .update(body)
        .digest();
      expect(Buffer.from(mac)).toEqual(expected);
      expect(decodeFrame(key, 'fleet', frame)).toMatchObject({ channel: Channel.BROADCAST });
      expect(decodeFrame(Buffer.alloc(16, 1), 'fleet', frame)).toEqual({ rejected: 'mac' });
    }
  });
});

const sqlValue = fc.oneof(
  fc.constant(null),
  fc.integer(),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  fc.double({ noNaN: true }),
  fc.string(),
  fc.uint8Array({ maxLength: 40 }).map((bytes) => Buffer.from(bytes)),
);
const counter = fc.nat({ max: 2 ** 52 });

const changesetArb = fc
  .record({
    actorId: fc.uint8Array({ minLength: 16, maxLength: 16 }).map((bytes) => Buffer.from(bytes)),
    version: counter,
    seqs: fc.tuple(counter, counter),
    lastSeq: counter,
    ts: counter,
    changes: fc.array(
      fc.record({
        table: fc.string(),
        pk: fc.uint8Array({ maxLength: 20 }).map((bytes) => Buffer.from(bytes)),
        // A row's changes repeat its pk (the decoder shares one Buffer for them): a copy of the
        // previous change's, or one byte different in its last place.
        pkLike: fc.constantFrom('own', 'previous', 'nearly'),
        cid: fc.string(),
        val: sqlValue,
        col_version: counter,
        cl: counter,
        seq: counter,
        ts: counter,
      }),
      { maxLength: 8 },
    ),
  })
  .map(
    (set): Changeset => ({
      ...set,
      changes: set.changes.reduce<Changeset['changes']>((decoded, { pkLike, ...change }) => {
        const previous = decoded[decoded.length - 1]?.pk;
        const pk = previous === undefined || pkLike === 'own' ? change.pk : Buffer.from(previous);
        const last = pk.length - 1;
        if (pkLike === 'nearly' && last >= 0) pk.writeUInt8(pk.readUInt8(last) ^ 1, last);
        decoded.push({ ...change, pk, db_version: set.version, site_id: set.actorId });
        return decoded;
      }, []),
    }),
  );

describe('the hand decoder of a Broadcast', () => {
  it("gives what protobufjs' generated decoder gives", () => {
    fc.assert(
      fc.property(fc.array(changesetArb, { maxLength: 5 }), (sets) => {
        const encoded = sets.map(encodeChangeset);
        const expected = encoded.map(decodeChangeset);
        expect(decodeBroadcast(encodeBroadcast(encoded))).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });

  it("shares one pk Buffer among a row's changes", () => {
    const pk = Buffer.from([1, 9, 0x6d, 0x31]);
    const other = Buffer.from([1, 9, 0x6d, 0x32]);
    const change = (cid: string, of: Buffer) => ({
      table: 'machines',
      pk: Buffer.from(of),
      cid,
      val: cid,
      col_version: 1,
      db_version: 1,
      site_id: Buffer.alloc(16, 7),
      cl: 1,
      seq: 0,
      ts: 1,
    });
    const set: Changeset = {
      actorId: Buffer.alloc(16, 7),
      version: 1,
      seqs: [0, 2],
      lastSeq: 2,
      ts: 1,
      changes: [change('app', pk), change('state', pk), change('app', other)],
    };
    const [decoded] = decodeBroadcast(encodeBroadcast([encodeChangeset(set)]));
    const [first, second, third] = decoded?.changes ?? [];
    expect(second?.pk).toBe(first?.pk);
    expect(third?.pk).not.toBe(first?.pk);
    expect([first?.pk, second?.pk, third?.pk]).toEqual([pk, pk, other]);
  });
});
