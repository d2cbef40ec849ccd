import { present } from '@fleet/service/invariant';
import type { Framing } from './head.js';

/** A chunk-size line or trailer section longer than this is refused (no legitimate one is). */
const lineBytesMax = 4_096;
const trailerBytesMax = 16 * 1_024;

const chunkSizeLine = /^([0-9a-fA-F]{1,15})[ \t]*(?:;[\t\x20-\x7e\x80-\xff]*)?\r$/;

export class FramingError extends Error {}

/**
 * Finds where a message body ends in the bytes that follow its head, without copying them: the
 * relay forwards the bytes as they came (chunked stays chunked) and needs only the boundary.
 * `take(chunk)` returns how many bytes of `chunk` belong to the body; `done` turns true with
 * the last one. Chunked bodies are checked as they pass (hex sizes, CRLFs, bounded trailers),
 * so a malformed body is cut rather than read differently by the machine.
 */
export class BodyFramer {
  done: boolean;
  #remaining: number;
  #chunked: boolean;
  // Chunked parser state: in a size line, in data (#remaining bytes left), expecting the CRLF
  // after data, or in the trailer section.
  #state: 'size' | 'data' | 'data-crlf' | 'trailer' = 'size';
  #line = '';
  #trailerBytes = 0;

  /** `onData`, when given, hears the body's data without chunked framing (HTTP/2 clients). */
  constructor(
    framing: Framing,
    private readonly onData?: (data: Buffer) => void,
  ) {
    this.#chunked = framing.kind === 'chunked';
    this.#remaining =
      framing.kind === 'length' ? framing.length : framing.kind === 'close' ? Infinity : 0;
    this.done = framing.kind === 'none';
  }

  take(chunk: Buffer): number {
    if (this.done) return 0;
    if (!this.#chunked) {
      const taken = Math.min(chunk.length, this.#remaining);
      this.#remaining -= taken;
      if (this.#remaining === 0) this.done = true;
      return taken;
    }
    let index = 0;
    while (index < chunk.length && !this.done) {
      if (this.#state === 'data') {
        const taken = Math.min(chunk.length - index, this.#remaining);
        this.onData?.(chunk.subarray(index, index + taken));
        index += taken;
        this.#remaining -= taken;
        if (this.#remaining === 0) this.#state = 'data-crlf';
        continue;
      }
      const byte = chunk.readUInt8(index);
      index += 1;
      if (this.#state === 'data-crlf') this.#dataCrlf(byte);
      else if (this.#state === 'size') this.#size(byte);
      else this.#trailer(byte);
    }
    return index;
  }

  /** A body that ends at close ends now. */
  ended(): void {
    if (this.#remaining === Infinity) this.done = true;
  }

  #dataCrlf(byte: number): void {
    this.#line += String.fromCharCode(byte);
    if (this.#line.length < 2) return;
    if (this.#line !== '\r\n') throw new FramingError('a chunk is not followed by CRLF');
    this.#line = '';
    this.#state = 'size';
  }

  #size(byte: number): void {
    if (this.#line.length >= lineBytesMax) throw new FramingError('a chunk-size line is too long');
    if (byte !== 10) {
      this.#line += String.fromCharCode(byte);
      return;
    }
    // Hex size, optional extensions (no control characters), CRLF: nothing a second parser
    // could read as another size (a bare CR, a space inside the digits).
    const match = chunkSizeLine.exec(this.#line);
    if (match === null) throw new FramingError('a chunk-size line is malformed');
    const size = Number.parseInt(present(match[1], 'the chunk size digits'), 16);
    this.#line = '';
    if (size === 0) this.#state = 'trailer';
    else {
      this.#remaining = size;
      this.#state = 'data';
    }
  }

  #trailer(byte: number): void {
    if (++this.#trailerBytes > trailerBytesMax)
      throw new FramingError('the trailers are too large');
    this.#line += String.fromCharCode(byte);
    if (byte !== 10) return;
    if (!this.#line.endsWith('\r\n')) throw new FramingError('a trailer line is malformed');
    const empty = this.#line === '\r\n';
    this.#line = '';
    if (empty) this.done = true;
  }
}
