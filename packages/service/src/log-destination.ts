/**
 * Where a server's log lines go: its stdout, written so that a stdout that is gone or blocked
 * never stops the server from working or from exiting (seed 003's lesson, in our own logs).
 *
 * pino's default destination (sonic-boom on fd 1) retries a write the pipe refuses every 100 ms
 * without end, and at exit flushes synchronously in the same loop: a server whose supervisor no
 * longer reads its stdout ignored SIGTERM forever. Here every line goes through Node's own
 * non-blocking stdout stream; past `bufferBytesMax` of unwritten output, or once stdout has failed
 * (EPIPE: the reader is gone), lines are dropped and counted (`log_lines_dropped_total`, by reason),
 * never retried, and exiting never waits for them beyond a short bound.
 */

/** Lines dropped since the process started, by reason; exported as `log_lines_dropped_total`. */
export const droppedLogLines = { blocked: 0, closed: 0 };

/** Default bound on log output waiting for a slow stdout. */
export const logBufferBytesMaxDefault = 1024 * 1024;

type Stdout = NodeJS.WriteStream & { _handle?: { setBlocking?: (blocking: boolean) => unknown } };

let stdoutFailed = false;
let guarded = false;

/**
 * Once per process: a failed stdout or stderr (EPIPE, EIO when the terminal closed) is an event to
 * note, not an uncaught exception that kills the server.
 */
function guardStdio(stdout: Stdout): void {
  if (guarded) return;
  guarded = true;
  stdout.on('error', () => {
    stdoutFailed = true;
  });
  process.stderr.on('error', () => undefined);
  // Node writes to a terminal synchronously on POSIX, so a terminal that stops reading (Ctrl-S)
  // would block the whole server; libuv reopened the tty for this process, so making it
  // non-blocking affects no other process sharing the terminal.
  if (stdout.isTTY) stdout._handle?.setBlocking?.(false);
}

export class LogDestination {
  readonly #stdout: Stdout;
  /** Lines dropped since the last one written: reported in the next line that gets through. */
  #droppedSinceWritten = 0;

  constructor(
    private readonly name: string,
    private readonly bufferBytesMax = logBufferBytesMaxDefault,
    stdout: NodeJS.WriteStream = process.stdout,
  ) {
    this.#stdout = stdout as Stdout;
    guardStdio(this.#stdout);
  }

  write(line: string): boolean {
    if (stdoutFailed || this.#stdout.destroyed) {
      droppedLogLines.closed++;
      return true;
    }
    if (this.#stdout.writableLength > this.bufferBytesMax) {
      droppedLogLines.blocked++;
      this.#droppedSinceWritten++;
      return true;
    }
    if (this.#droppedSinceWritten > 0) {
      this.#stdout.write(this.#droppedNotice());
      this.#droppedSinceWritten = 0;
    }
    this.#stdout.write(line);
    return true;
  }

  /** Calls back once what is buffered is written, or after `timeoutMs` (never waits longer). */
  flush(callback: (error?: Error) => void = () => undefined, timeoutMs = 500): void {
    drainStdout(timeoutMs, this.#stdout).then(() => callback());
  }

  #droppedNotice(): string {
    const dropped = this.#droppedSinceWritten;
    return `${JSON.stringify({
      level: 40,
      time: Date.now(),
      pid: process.pid,
      name: this.name,
      event: 'log_lines_dropped',
      dropped,
      msg: `stdout was not being read: ${dropped} log lines dropped`,
    })}\n`;
  }
}

/** Resolves once stdout has written what it holds, or after `timeoutMs`, or at once if it failed. */
export async function drainStdout(
  timeoutMs: number,
  stdout: NodeJS.WriteStream = process.stdout,
): Promise<void> {
  // Polled: 'drain' only fires after a write was refused, not whenever the buffer empties.
  const deadline = Date.now() + timeoutMs;
  while (!stdoutFailed && !stdout.destroyed && stdout.writableLength > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
