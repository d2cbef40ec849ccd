import { fstatSync, read } from 'node:fs';
import { isAbsolute, relative } from 'node:path';

/**
 * The launcher's own output, and noticing that nobody reads it any more. A terminal that closed
 * or a reader that went away must not crash the launcher (an unhandled EPIPE used to kill it
 * between "stopping the fleet" and stopping it, leaving flyd's machines behind): writes to a
 * failed stdout are dropped, and its failure is reported once, as the reader being gone.
 */

let gone = false;
const onGone: (() => void)[] = [];

function readerGone(): void {
  if (gone) return;
  gone = true;
  for (const callback of onGone.splice(0)) callback();
}

process.stdout.on('error', readerGone);

/** Writes to stdout; never throws, and does nothing once stdout has failed. */
export function write(text: string): void {
  if (gone) return;
  try {
    process.stdout.write(text);
  } catch {
    readerGone();
  }
}

/** How often a socket stdout is checked for its reader having closed it. */
const outputCheckIntervalMs = 1_000;

/**
 * Calls `callback` once when whoever reads the launcher's output is gone: at the first failed
 * write, or — when stdout is a socket (a supervisor's pipe, such as Node's `stdio: 'pipe'` or
 * journald's stream) — as soon as reading it gives end-of-file, checked every second while the
 * launcher has nothing to write. A terminal is never read from (that would take the user's
 * keystrokes); its closing comes as SIGHUP.
 */
export function watchOutput(callback: () => void): void {
  if (gone) {
    callback();
    return;
  }
  onGone.push(callback);
  if (!isSocket(1)) return;
  const buffer = Buffer.alloc(64);
  const check = () => {
    if (gone) return;
    read(1, buffer, 0, buffer.length, null, (error, bytesRead) => {
      if (!error && bytesRead === 0) return readerGone(); // end of file: the peer closed
      if (error && error.code !== 'EAGAIN' && error.code !== 'EWOULDBLOCK') return;
      setTimeout(check, outputCheckIntervalMs).unref();
    });
  };
  check();
}

function isSocket(fd: number): boolean {
  try {
    return fstatSync(fd).isSocket();
  } catch {
    return false;
  }
}

/** `path` as the welcome shows it: relative to the working directory when under it, else whole. */
export function shownPath(path: string): string {
  const fromHere = relative(process.cwd(), path);
  if (fromHere === '') return '.';
  const outside = fromHere === '..' || fromHere.startsWith('../') || isAbsolute(fromHere);
  return outside ? path : fromHere;
}
