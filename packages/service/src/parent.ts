import { fstatSync } from 'node:fs';
import { Socket } from 'node:net';

/**
 * Names the descriptor of a pipe that a supervisor (the fleet launcher, a test fixture: whatever
 * starts servers through `startServerProcess`) hands its server. The supervisor never writes to
 * it; the server reads end-of-file once the supervisor is gone, however it went — kill -9 too —
 * and shuts down. Servers started by hand or by systemd do not get it and are unaffected.
 */
export const parentFdVariable = 'FLEET_PARENT_FD';

/**
 * Calls `onGone` once when the supervisor named by FLEET_PARENT_FD is gone. Does nothing when the
 * variable is not set. The variable is removed from this process's environment so that nothing
 * this server starts takes the pipe for its own.
 */
export function watchParent(onGone: () => void): boolean {
  const text = process.env[parentFdVariable];
  if (text === undefined) return false;
  delete process.env[parentFdVariable];
  const fd = Number(text);
  if (!Number.isInteger(fd) || fd < 3 || !isSocket(fd)) {
    process.stderr.write(`${parentFdVariable}=${text} is not a pipe from a supervisor: ignored\n`);
    return false;
  }
  const pipe = new Socket({ fd, readable: true, writable: false });
  let gone = false;
  const fire = () => {
    if (gone) return;
    gone = true;
    onGone();
  };
  pipe.on('data', () => undefined); // nothing is ever sent; reading is what notices the end
  pipe.once('end', fire);
  pipe.once('close', fire);
  pipe.once('error', fire);
  // Watching must not keep a server alive that would otherwise exit.
  pipe.unref();
  return true;
}

function isSocket(fd: number): boolean {
  try {
    return fstatSync(fd).isSocket();
  } catch {
    return false;
  }
}
