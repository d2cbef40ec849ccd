import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { Logger } from '@fleet/service';
import { logMetrics } from '../metrics.js';

/**
 * Ships machine output lines as NDJSON (`{machine, stream, message, timestamp}`) to a TCP log
 * collector. The collector can stall (seed 003: a wedged log path wedged machines' stdout), so
 * a machine's output is only ever held back for `writeTimeoutMs`: while the sink pushes back the
 * machine's pipe is paused; past the timeout flyd warns, counts, resumes reading, and drops the
 * lines meant for the sink until it drains. The machine never blocks for longer than that.
 */
export class LogSink {
  readonly #events = new EventEmitter();
  #socket: Socket | undefined;
  #backpressured = false;
  #nextConnectMs = 0;
  readonly #timeouts = logMetrics().sinkTimeouts;
  readonly #dropped = logMetrics().dropped;

  constructor(
    private readonly address: { host: string; port: number },
    private readonly writeTimeoutMs: number,
    private readonly logger: Logger,
  ) {
    this.#events.setMaxListeners(0); // one listener per paused machine stream, removed on drain
  }

  /** Ships every line of `input` while following the sink's pushback, bounded per stall. */
  follow(
    machineId: string,
    stream: 'stdout' | 'stderr',
    input: Readable,
    onLine: (line: string) => void,
  ): void {
    let shedding = false;
    let pending = '';
    const ship = (line: string) => {
      onLine(line);
      if (shedding && this.#backpressured) this.#dropped.add(1, { reason: 'stalled' });
      else this.#write({ machine: machineId, stream, message: line, timestamp: Date.now() });
    };
    input.setEncoding('utf8');
    input.on('data', (chunk: string) => {
      pending += chunk;
      let newline = pending.indexOf('\n');
      while (newline !== -1) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        ship(line);
        newline = pending.indexOf('\n');
      }
      if (pending.length > 64 * 1024) pending = pending.slice(-64 * 1024); // an endless line is cut
      if (!this.#backpressured || shedding) return;
      input.pause();
      const timer = setTimeout(() => {
        shedding = true;
        this.#timeouts.add(1, { stream });
        this.logger.warn(
          { machine: machineId, stream, writeTimeoutMs: this.writeTimeoutMs },
          'log sink stalled: dropping machine output until it drains',
        );
        this.#events.off('drain', resume);
        input.resume();
      }, this.writeTimeoutMs);
      const resume = () => {
        clearTimeout(timer);
        input.resume();
      };
      this.#events.once('drain', resume);
    });
    const reset = () => {
      shedding = false;
    };
    this.#events.on('drain', reset);
    input.once('end', () => {
      if (pending.length > 0) ship(pending); // a last line without a newline is a line too
    });
    input.once('close', () => this.#events.off('drain', reset));
  }

  close(): void {
    this.#socket?.destroy();
  }

  #write(record: object): void {
    const socket = this.#connect();
    if (!socket) {
      this.#dropped.add(1, { reason: 'disconnected' });
      return;
    }
    if (!socket.write(`${JSON.stringify(record)}\n`)) this.#backpressured = true;
  }

  /** The live connection; a lost one is retried at most once a second (lines meanwhile dropped). */
  #connect(): Socket | undefined {
    if (this.#socket && !this.#socket.destroyed) return this.#socket;
    if (Date.now() < this.#nextConnectMs) return undefined;
    this.#nextConnectMs = Date.now() + 1_000;
    const socket = connect(this.address);
    socket.on('drain', () => {
      this.#backpressured = false;
      this.#events.emit('drain');
    });
    socket.on('error', (error) => this.logger.warn({ err: error }, 'log sink connection failed'));
    socket.on('close', () => {
      this.#backpressured = false;
      this.#events.emit('drain'); // lines go nowhere until it reconnects, but machines never wait
    });
    this.#socket = socket;
    return socket;
  }
}
