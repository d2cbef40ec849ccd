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
      ['POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 1e3', 400],
      ['POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 0x10', 400],
      ['POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 5 5', 400],
      ['POST / HTTP/1.1\r\nhost: a\r\ncontent-length:', 400],
      ['POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 1234567890123456', 400],
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
      ['CONNECT a:80 HTTP/1.1\r\nhost: a:80', 400],
      ['GET nopath HTTP/1.1\r\nhost: a', 400],
      ['GET * HTTP/1.1\r\nhost: a', 400],
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
    // Content-Length is 1 to 15 digits, leading zeros and all; Connection tokens are trimmed of
    // SP and HTAB, lowercased, and empty ones skipped.
    expect(
      parseRequestHead(
        'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\nConnection: , close ,,\tKeep-Alive ',
      ),
    ).toMatchObject({
      framing: { kind: 'length', length: 7 },
      connection: ['close', 'keep-alive'],
    });
    expect(
      parseRequestHead('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 999999999999999').framing,
    ).toEqual({ kind: 'length', length: 999_999_999_999_999 });
  });

  it('reads every well-formed field line exactly, and refuses a block with one bad line', () => {
    const token = fc.stringMatching(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,12}$/);
    const value = fc.stringMatching(/^[\t\x20-\x7e\x80-\xff]{0,20}$/);
    const ows = fc.constantFrom('', ' ', '\t', ' \t ');
    const line = fc.record({ name: token, value, before: ows, after: ows });
    // Names the parser gives meaning to are left out: their values must parse as what they are.
    const plain = line.filter(
      ({ name }) =>
        !/^(content-length|transfer-encoding|connection|host|expect|upgrade)$/i.test(name),
    );
    fc.assert(
      fc.property(fc.array(plain, { minLength: 1, maxLength: 8 }), (lines) => {
        const block = lines.map((l) => `${l.name}:${l.before}${l.value}${l.after}`).join('\r\n');
        const head = parseResponseHead(`HTTP/1.1 200 OK\r\n${block}`, 'GET');
        expect(head.headers).toEqual(
          lines.map((l) => [l.name.toLowerCase(), l.value.replace(/^[ \t]+|[ \t]+$/g, '')]),
        );
      }),
    );
    const bad = fc.constantFrom('\x00', '\x7f', '\n', '\r', '\x1b');
    fc.assert(
      fc.property(
        fc.array(plain, { minLength: 1, maxLength: 6 }),
        fc.nat(),
        bad,
        fc.boolean(),
        (lines, at, character, inName) => {
          const texts = lines.map((l) => `${l.name}: ${l.value}`);
          const index = at % texts.length;
          const spoilt = texts[index] as string;
          const cut = inName ? 1 : spoilt.length;
          texts[index] = `${spoilt.slice(0, cut)}${character}${spoilt.slice(cut)}`;
          const block = texts.join('\r\n');
          expect(() => parseRequestHead(`GET / HTTP/1.1\r\n${block}`)).toThrow(HeadError);
          expect(() => parseResponseHead(`HTTP/1.1 200 OK\r\n${block}`, 'GET')).toThrow(HeadError);
        },
      ),
    );
    expect(() => parseResponseHead('HTTP/1.1 200 OK\r\nx: 1\r\n\r\ny: 2', 'GET')).toThrow(
      'a header line has no name',
    );
  });

  it('reads status lines by character as strictly as their grammar', () => {
    expect(parseResponseHead('HTTP/1.0 404 Not Found', 'GET')).toMatchObject({
      status: 404,
      reason: 'Not Found',
      minor: 0,
    });
    expect(parseResponseHead('HTTP/1.1 200', 'GET')).toMatchObject({ status: 200, reason: '' });
    for (const bad of [
      'HTTP/1.2 200 OK',
      'HTTP/1.1 20 OK',
      'HTTP/1.1 2000 OK',
      'HTTP/1.1  200',
      'HTTP/2 200',
      'HTTP/1.1 200 O\x00K',
      'http/1.1 200 OK',
    ]) {
      expect(() => parseResponseHead(bad, 'GET'), JSON.stringify(bad)).toThrow(HeadError);
    }
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
