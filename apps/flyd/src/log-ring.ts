export interface LogLine {
  timestamp: number;
  stream: 'stdout' | 'stderr';
  message: string;
}

/** The last `capacity` lines of a machine's output; longer lines are cut at `lineBytesMax`. */
export class LogRing {
  readonly #lines: LogLine[] = [];

  constructor(
    private readonly capacity = 1_000,
    private readonly lineBytesMax = 8_192,
  ) {}

  push(stream: LogLine['stream'], message: string): void {
    const cut =
      message.length > this.lineBytesMax ? `${message.slice(0, this.lineBytesMax)}…` : message;
    this.#lines.push({ timestamp: Date.now(), stream, message: cut });
    if (this.#lines.length > this.capacity) this.#lines.shift();
  }

  lines(): LogLine[] {
    return [...this.#lines];
  }
}
