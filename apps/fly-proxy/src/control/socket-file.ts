import { lstatSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { privateDir } from '@fleet/service';

/** Linux's bound on a unix socket path (sun_path is 108 bytes with its NUL). */
const socketPathBytesMax = 107;
/** Bound on asking whether a process still answers on an existing socket file. */
const probeTimeoutMs = 1_000;

export type SocketFileState = 'free' | 'replaced-stale' | 'in-use';

/**
 * Makes `path` ready to listen on. A socket file left by a dead process (nothing accepts on it)
 * is removed; one a live process accepts on is left alone ('in-use'), and so is anything that is
 * not a socket (an error): the proxy never deletes a file it cannot prove is a dead socket.
 */
export async function prepareSocketFile(path: string, directory: string): Promise<SocketFileState> {
  if (Buffer.byteLength(path) > socketPathBytesMax) {
    throw new Error(
      `control socket path ${path} is longer than ${socketPathBytesMax} bytes: choose a shorter --state-dir`,
    );
  }
  // The proxy's alone, also when it was there before (made by the state lock, or an operator):
  // whoever may connect to the socket commands the proxy.
  privateDir(directory);
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'free';
    throw error;
  }
  if (!isSocket)
    throw new Error(`${path} exists and is not a socket: remove it or choose another --state-dir`);
  if (await answers(path)) return 'in-use';
  unlinkSync(path);
  return 'replaced-stale';
}

/** True when something accepts connections on the socket (a live or a stopped process). */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path);
    const done = (alive: boolean) => {
      socket.destroy();
      resolve(alive);
    };
    socket.setTimeout(probeTimeoutMs, () => done(true));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
