import {
  closeSync,
  fstatSync,
  ftruncateSync,
  openSync,
  readFileSync,
  readSync,
  writeFileSync,
} from 'node:fs';
import { PassThrough, type Readable } from 'node:stream';

/** How often a machine's output file is read. */
const pollMs = 100;
/** Read at most this much at a time, so one chatty machine cannot hold flyd's event loop. */
const chunkBytesMax = 1024 * 1024;

/**
 * Follows one output file of a machine (its stdout or stderr, opened by the machine with
 * O_APPEND, so it outlives flyd): what is appended comes out of `output` as it would from a
 * pipe. The offset read so far is kept in `<file>.offset`, so a flyd started again goes on where
 * the last one stopped, lines written meanwhile included. Once everything is read and the file
 * reached `sizeMax`, it is emptied (a line the machine appends in between is lost: the race of
 * any copy-truncate rotation). While `output`'s reader pushes back, reading waits: the file, not
 * flyd's memory, holds the backlog.
 */
export class OutputTail {
  readonly output: Readable;
  readonly #stream = new PassThrough();
  readonly #fd: number;
  readonly #timer: NodeJS.Timeout;
  #offset: number;
  #waiting = false;
  #finishing = false;
  #closed = false;

  constructor(
    private readonly file: string,
    private readonly sizeMax: number,
  ) {
    this.output = this.#stream;
    this.#fd = openSync(file, 'r+');
    this.#offset = readOffset(`${file}.offset`);
    this.#timer = setInterval(() => this.#read(), pollMs);
    this.#stream.on('drain', () => {
      this.#waiting = false;
      this.#read();
    });
  }

  /**
   * Reads what is left and then ends `output` (the machine exited: nothing more will come). The
   * rest is read as `output`'s reader takes it, so a slow reader still gets every line.
   */
  finish(): void {
    this.#finishing = true;
    clearInterval(this.#timer);
    this.#read();
  }

  /** Stops following, keeping the offset (flyd leaves; the machine goes on writing). */
  release(): void {
    this.#close();
    this.#stream.destroy();
  }

  /** Reads one chunk, and schedules the next while more is there and the reader takes it. */
  #read(): void {
    if (this.#waiting || this.#closed) return;
    const size = fstatSync(this.#fd).size;
    if (size < this.#offset) this.#offset = 0; // emptied behind our back
    if (size === this.#offset) {
      if (this.#finishing) {
        this.#close();
        this.#stream.end();
        return;
      }
      if (size >= this.sizeMax) {
        ftruncateSync(this.#fd, 0);
        this.#offset = 0;
        this.#saveOffset();
      }
      return;
    }
    const buffer = Buffer.alloc(Math.min(size - this.#offset, chunkBytesMax));
    const read = readSync(this.#fd, buffer, 0, buffer.length, this.#offset);
    this.#offset += read;
    this.#saveOffset();
    if (!this.#stream.write(buffer.subarray(0, read))) this.#waiting = true;
    // More is there: read on at the next turn of the loop rather than the next poll, so a chatty
    // machine is followed at disk speed while other work still gets its turn between chunks.
    else if (this.#offset < size || this.#finishing) setImmediate(() => this.#read());
  }

  #saveOffset(): void {
    writeFileSync(`${this.file}.offset`, String(this.#offset));
  }

  #close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    try {
      closeSync(this.#fd);
    } catch {
      // closed already
    }
  }
}

function readOffset(file: string): number {
  try {
    const offset = Number(readFileSync(file, 'utf8'));
    return Number.isSafeInteger(offset) && offset >= 0 ? offset : 0;
  } catch {
    return 0;
  }
}
