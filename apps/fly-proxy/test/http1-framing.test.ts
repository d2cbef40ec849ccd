import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BodyFramer, FramingError } from '../src/http1/body.js';
import { HeadError, parseRequestHead, parseResponseHead } from '../src/http1/head.js';

/** Feeds `bytes` to a framer in the given pieces; returns the bytes it claimed as body. */
function frame(framer: BodyFramer, bytes: Buffer, cuts: number[]): number {
  let offset = 0;
  let taken = 0;
  for (const cut of [
    ...cuts.filter((c) => c > 0 && c < bytes.length).sort((a, b) => a - b),
    bytes.length,
  ]) {
    if (cut <= offset) continue;
    const piece = bytes.subarray(offset, cut);
    const claimed = framer.take(piece);
    taken += claimed;
    if (claimed < piece.length) break;
    offset = cut;
  }
  return taken;
}

function chunked(pieces: string[], trailers = ''): Buffer {
  const body = pieces.map((piece) => `${Buffer.byteLength(piece).toString(16)}\r\n${piece}\r\n`);
  return Buffer.from(`${body.join('')}0\r\n${trailers}\r\n`);
}

// The relay forwards bodies as they came and must find each one's end exactly as the machine
// will, wherever TCP cuts the bytes; anything ambiguous is refused, never guessed.
describe('HTTP/1.1 heads and body framing', () => {
  it('finds the end of a chunked body wherever the bytes are cut, and not a byte further', () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ minLength: 1, maxLength: 40 }), { maxLength: 6 }),
        fc.array(fc.nat(400), { maxLength: 8 }),
        fc.string({ maxLength: 10 }),
        (pieces, cuts, next) => {
          const body = chunked(pieces, pieces.length % 2 ? 'x-sum: 1\r\n' : '');
          const framer = new BodyFramer({ kind: 'chunked' });
          const taken = frame(framer, Buffer.concat([body, Buffer.from(next)]), cuts);
          expect(framer.done).toBe(true);
          expect(taken).toBe(body.length);
        },
      ),
    );
  });

  it('counts a Content-Length body exactly', () => {
    const framer = new BodyFramer({ kind: 'length', length: 5 });
    expect(framer.take(Buffer.from('hel'))).toBe(3);
    expect(framer.done).toBe(false);
    expect(framer.take(Buffer.from('loGET /'))).toBe(2);
    expect(framer.done).toBe(true);
  });

  it('refuses chunk sizes a second parser could read differently', () => {
    for (const bad of [
      '1 2\r\nx\r\n',
      '1\r2\r\n',
      '-1\r\n',
      'g\r\n',
      '1;a\x00\r\n',
      '\r\n',
      '1\n',
    ]) {
      const framer = new BodyFramer({ kind: 'chunked' });
      expect(() => framer.take(Buffer.from(bad)), JSON.stringify(bad)).toThrow(FramingError);
    }
    const missingCrlf = new BodyFramer({ kind: 'chunked' });
    expect(() => missingCrlf.take(Buffer.from('2\r\nabXY'))).toThrow(FramingError);
  });

  it('refuses the request heads of request smuggling and other ambiguity', () => {
    const bad: [string, number][] = [
      ['POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\ntransfer-encoding: chunked', 400],
      ['POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\ncontent-length: 5', 400],
      ['POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\ncontent-length: 5', 400],
      ['POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\ncontent-length: 6', 400],
      ['POST / HTTP/1.1\r\nhost: a\r\ncontent-length: +5', 400],
      ['POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: gzip', 400],
      ['POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked, gzip', 400],
      [
        'POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\ntransfer-encoding: chunked',
        400,
      ],
      ['POST / HTTP/1.0\r\nhost: a\r\ntransfer-encoding: chunked', 400],
      ['GET / HTTP/1.1\r\nhost: a\r\nx-folded: a\r\n b', 400],
      ['GET / HTTP/1.1\r\nhost : a', 400],
      ['GET / HTTP/1.1\r\nhost: a\r\nx: a\x00b', 400],
      ['GET  / HTTP/1.1\r\nhost: a', 400],
      ['GET / HTTP/2.0\r\nhost: a', 400],
      ['GET / HTTP/1.1\r\nhost: a\r\nexpect: 200-ok', 400],
    ];
    for (const [head, status] of bad) {
      let caught: unknown;
      try {
        parseRequestHead(head);
      } catch (error) {
        caught = error;
      }
      expect(caught, JSON.stringify(head)).toBeInstanceOf(HeadError);
      expect((caught as HeadError).status).toBe(status);
    }
  });

  it('reads the framing, Host lines, Expect and Upgrade of a good request head', () => {
    const head = parseRequestHead(
      'POST /x?y=1 HTTP/1.1\r\nHost: a.b\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket',
    );
    expect(head).toMatchObject({
      method: 'POST',
      target: '/x?y=1',
      minor: 1,
      hosts: ['a.b'],
      expectContinue: true,
      upgrade: 'websocket',
      framing: { kind: 'chunked' },
      connection: ['keep-alive', 'upgrade'],
    });
  });

  it('frames responses by method and status before headers', () => {
    expect(parseResponseHead('HTTP/1.1 200 OK\r\ncontent-length: 10', 'HEAD').framing.kind).toBe(
      'none',
    );
    expect(parseResponseHead('HTTP/1.1 204 No Content', 'GET').framing.kind).toBe('none');
    expect(
      parseResponseHead('HTTP/1.1 304 Not Modified\r\ncontent-length: 3', 'GET').framing.kind,
    ).toBe('none');
    expect(parseResponseHead('HTTP/1.1 200 OK', 'GET').framing.kind).toBe('close');
    expect(
      parseResponseHead('HTTP/1.1 200 OK\r\ntransfer-encoding: gzip', 'GET').framing.kind,
    ).toBe('close');
    expect(parseResponseHead('HTTP/1.1 200 OK\r\ncontent-length: 0', 'GET').framing.kind).toBe(
      'none',
    );
    expect(() => parseResponseHead('HTTP/1.1 OK', 'GET')).toThrow(HeadError);
  });
});
