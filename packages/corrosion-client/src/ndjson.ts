import { CorrosionError } from './errors.js';
import type { QueryEvent } from './types.js';

/** Splits a byte stream into parsed NDJSON events; a line longer than `maxLineBytes` fails. */
export async function* ndjsonEvents(
  body: AsyncIterable<Buffer | string>,
  maxLineBytes = 16 * 1024 * 1024,
): AsyncGenerator<QueryEvent> {
  let pending = '';
  for await (const chunk of body) {
    pending += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    let newline = pending.indexOf('\n');
    while (newline !== -1) {
      const line = pending.slice(0, newline).trim();
      pending = pending.slice(newline + 1);
      if (line !== '') yield parseEvent(line);
      newline = pending.indexOf('\n');
    }
    if (pending.length > maxLineBytes) {
      throw new CorrosionError('CORRO_ERR_PROTOCOL', `stream line over ${maxLineBytes} bytes`);
    }
  }
  if (pending.trim() !== '') yield parseEvent(pending.trim());
}

function parseEvent(line: string): QueryEvent {
  try {
    const event = JSON.parse(line) as unknown;
    if (typeof event === 'object' && event !== null) return event as QueryEvent;
  } catch {
    // fall through to the protocol error below
  }
  throw new CorrosionError('CORRO_ERR_PROTOCOL', `not a query event: ${line.slice(0, 200)}`);
}
