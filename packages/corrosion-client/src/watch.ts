import type { CorrosionClient } from './client.js';
import { CorrosionError } from './errors.js';
import type { QueryEvent, Statement, WatchEvent } from './types.js';

/** The state a watch keeps across reconnects. */
interface Cursor {
  id?: string;
  /** Last change id delivered; resume asks for what came after it. */
  changeId: number;
  /** True once the current subscription's initial rows were delivered. */
  loaded: boolean;
}

/** See `CorrosionClient.watch`. Backoff doubles from 100 ms up to `retryDelayMsMax`. */
export async function watchSubscription(
  client: CorrosionClient,
  statement: Statement,
  onEvent: (event: WatchEvent) => void,
  options: { signal: AbortSignal; retryDelayMsMax?: number },
): Promise<void> {
  const { signal } = options;
  const retryDelayMsMax = options.retryDelayMsMax ?? 5_000;
  const cursor: Cursor = { changeId: 0, loaded: false };
  let delayMs = 100;
  while (!signal.aborted) {
    try {
      const resuming = cursor.id !== undefined && cursor.loaded;
      const stream = await openStream(client, statement, cursor, resuming, signal);
      delayMs = 100;
      for await (const event of stream.events) deliver(event, cursor, onEvent);
    } catch (error) {
      if (signal.aborted) return;
      // A resume the agent refuses (it restarted, or we are too far behind) starts over.
      if (error instanceof CorrosionError && error.statusCode !== undefined) {
        if (error.statusCode < 500 && cursor.loaded) cursor.loaded = false;
        else if (error.statusCode < 500) throw error;
      }
    }
    if (signal.aborted) return;
    await sleep(delayMs, signal);
    delayMs = Math.min(delayMs * 2, retryDelayMsMax);
  }
}

async function openStream(
  client: CorrosionClient,
  statement: Statement,
  cursor: Cursor,
  resuming: boolean,
  signal: AbortSignal,
) {
  if (resuming && cursor.id !== undefined) {
    return client.openSubscription({ id: cursor.id, from: cursor.changeId }, signal);
  }
  const stream = await client.openSubscription({ statement }, signal);
  cursor.id = stream.id;
  cursor.changeId = 0;
  return stream;
}

function deliver(event: QueryEvent, cursor: Cursor, onEvent: (event: WatchEvent) => void): void {
  if ('columns' in event) {
    onEvent({ type: 'reset', columns: event.columns });
  } else if ('row' in event) {
    onEvent({ type: 'row', rowid: event.row[0], cells: event.row[1] });
  } else if ('eoq' in event) {
    cursor.changeId = event.eoq.change_id ?? 0;
    cursor.loaded = true;
    onEvent({ type: 'ready', changeId: cursor.changeId });
  } else if ('change' in event) {
    const [kind, rowid, cells, changeId] = event.change;
    if (changeId <= cursor.changeId) return; // already seen before a reconnect
    cursor.changeId = changeId;
    onEvent({ type: 'change', kind, rowid, cells, changeId });
  } else if ('error' in event) {
    throw new CorrosionError('CORRO_ERR_QUERY', event.error);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
