/**
 * The proxy's most recent output lines, kept to put beside an incident's report. Bounded in lines
 * and in bytes per line, so a proxy printing a huge line cannot grow the watchdog.
 */
export class LogTail {
  readonly #lines: string[] = [];

  constructor(
    readonly linesMax: number,
    readonly lineBytesMax = 8_192,
  ) {}

  push(line: string): void {
    this.#lines.push(
      line.length > this.lineBytesMax ? `${line.slice(0, this.lineBytesMax)}…` : line,
    );
    if (this.#lines.length > this.linesMax) this.#lines.shift();
  }

  text(): string {
    return this.#lines.length === 0 ? '' : `${this.#lines.join('\n')}\n`;
  }
}
