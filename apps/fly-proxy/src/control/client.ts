import { connect } from 'node:net';
import type { ControlAnswer, ControlRequest } from './protocol.js';

/** Why a control request got no answer: what proxyctl prints and the watchdog counts. */
export class ControlUnreachableError extends Error {
  constructor(
    readonly reason: 'missing' | 'refused' | 'timeout' | 'closed' | 'bad-answer',
    message: string,
  ) {
    super(message);
    this.name = 'ControlUnreachableError';
  }
}

/** Bound on an answer line (a `locks` snapshot of a busy proxy is the largest). */
const answerBytesMax = 16 * 1_048_576;

/**
 * Sends one request on the control socket at `path` and resolves with its answer, or rejects with
 * ControlUnreachableError when there is no socket, nobody accepts on it, or no answer comes
 * within `timeoutMs` (a wedged proxy still accepts — the kernel does — but never answers).
 */
export function askControl(
  path: string,
  request: ControlRequest,
  timeoutMs: number,
): Promise<ControlAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    let received = '';
    const fail = (error: ControlUnreachableError) => {
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    };
    const timer = setTimeout(
      () =>
        fail(new ControlUnreachableError('timeout', `no answer on ${path} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.setEncoding('utf8');
    socket.once('connect', () => socket.write(`${JSON.stringify(request)}\n`));
    socket.on('data', (chunk: string) => {
      received += chunk;
      const newline = received.indexOf('\n');
      if (newline === -1) {
        if (received.length > answerBytesMax) {
          fail(
            new ControlUnreachableError(
              'bad-answer',
              `answer on ${path} exceeds ${answerBytesMax} bytes`,
            ),
          );
        }
        return;
      }
      clearTimeout(timer);
      socket.end();
      try {
        resolve(JSON.parse(received.slice(0, newline)) as ControlAnswer);
      } catch (error) {
        reject(
          new ControlUnreachableError(
            'bad-answer',
            `answer on ${path} is not JSON: ${String(error)}`,
          ),
        );
      }
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') {
        fail(
          new ControlUnreachableError(
            'missing',
            `no control socket at ${path}: is the proxy running with this --state-dir?`,
          ),
        );
      } else if (error.code === 'ECONNREFUSED') {
        fail(
          new ControlUnreachableError(
            'refused',
            `nothing accepts on ${path}: the proxy that made it is gone`,
          ),
        );
      } else {
        fail(new ControlUnreachableError('closed', `control socket ${path}: ${error.message}`));
      }
    });
    socket.once('close', () =>
      fail(new ControlUnreachableError('closed', `the proxy closed ${path} without answering`)),
    );
  });
}
