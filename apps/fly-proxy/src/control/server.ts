import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { type ControlSources, runCommand } from './commands.js';
import { ControlError } from './errors.js';
import {
  answerLine,
  type ControlAnswer,
  controlLimits,
  controlSocketName,
  errorAnswer,
  parseRequest,
} from './protocol.js';
import { prepareSocketFile } from './socket-file.js';

export interface ControlChannel {
  /** The socket's path (even when another process holds it and this one is not listening). */
  readonly path: string;
  readonly listening: boolean;
  /** Stops listening, closes clients and removes the socket file. */
  close(): Promise<void>;
}

/**
 * Listens on `<stateDir>/control.sock` (or `socketName`: a watchdog's generation, a strict second
 * instance) for operators (`proxyctl`) and the watchdog. Every answer
 * is computed on the proxy's event loop, so a proxy whose loop is wedged stops answering: that is
 * the watchdog's signal (seed 001/002). When a live process already answers on the socket, the
 * proxy keeps serving traffic without a control channel and says so in an error log line.
 */
export async function startControl(
  stateDir: string,
  sources: ControlSources,
  socketName = controlSocketName,
): Promise<ControlChannel> {
  const path = join(stateDir, socketName);
  const state = await prepareSocketFile(path, stateDir);
  const { logger } = sources;
  if (state === 'in-use') {
    logger.error(
      { event: 'control_socket_in_use', path },
      'another live process answers on the control socket: running without a control channel',
    );
    return { path, listening: false, close: () => Promise.resolve() };
  }
  if (state === 'replaced-stale') {
    logger.warn({ event: 'control_socket_stale', path }, 'replaced a stale control socket');
  }
  const clients = new Set<Socket>();
  const server = createServer((socket) => serveClient(socket, sources, clients));
  server.maxConnections = controlLimits.clientsMax + 1; // one more, to be told it is one too many
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // exclusive: a watchdog's generation binds its own socket, not one shared by the watchdog.
    server.listen({ path, exclusive: true }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (error) => logger.error({ err: error, path }, 'control channel error'));
  logger.info({ event: 'control_listening', path }, 'control channel listening');
  return { path, listening: true, close: () => closeServer(server, clients) };
}

function serveClient(socket: Socket, sources: ControlSources, clients: Set<Socket>): void {
  if (clients.size >= controlLimits.clientsMax) {
    const message = `more than ${controlLimits.clientsMax} control clients at once`;
    socket.end(answerLine(errorAnswer(new ControlError('CONTROL_ERR_TOO_MANY_CLIENTS', message))));
    return;
  }
  clients.add(socket);
  socket.once('close', () => clients.delete(socket));
  socket.on('error', () => socket.destroy());
  socket.setTimeout(controlLimits.idleTimeoutMs, () => socket.destroy());
  socket.setEncoding('utf8');
  let buffered = '';
  let pending = 0;
  let chain = Promise.resolve();
  const send = (answer: ControlAnswer) => {
    if (socket.destroyed || socket.writableEnded) return;
    socket.write(answerLine(answer));
    // A client that never reads its answers must not grow this process's memory.
    if (socket.writableLength > controlLimits.unreadBytesMax) socket.destroy();
  };
  const refuse = (error: ControlError) => {
    send(errorAnswer(error));
    socket.end();
    socket.pause();
  };
  socket.on('data', (chunk: string) => {
    buffered += chunk;
    let newline = buffered.indexOf('\n');
    while (newline !== -1 && !socket.writableEnded) {
      const line = buffered.slice(0, newline).trim();
      buffered = buffered.slice(newline + 1);
      newline = buffered.indexOf('\n');
      if (line === '') continue;
      if (pending >= controlLimits.pendingMax) {
        const message = `more than ${controlLimits.pendingMax} requests not yet answered`;
        return refuse(new ControlError('CONTROL_ERR_TOO_MANY_PENDING', message));
      }
      pending++;
      chain = chain.then(async () => {
        send(await answer(sources, line));
        pending--;
      });
    }
    if (Buffer.byteLength(buffered) > controlLimits.lineBytesMax) {
      const message = `request line longer than ${controlLimits.lineBytesMax} bytes`;
      refuse(new ControlError('CONTROL_ERR_LINE_TOO_LONG', message));
    }
  });
}

async function answer(sources: ControlSources, line: string): Promise<ControlAnswer> {
  try {
    const request = parseRequest(line);
    return { ok: true, result: await bounded(runCommand(sources, request), request.command) };
  } catch (error) {
    if (error instanceof ControlError) return errorAnswer(error);
    sources.logger.error({ err: error, line }, 'control command failed');
    return errorAnswer(new ControlError('CONTROL_ERR_INTERNAL', String(error)));
  }
}

/** A command that waits (a catalog lock, a lazy load) answers within commandTimeoutMs or fails. */
function bounded(result: unknown, command: string): unknown {
  if (!(result instanceof Promise)) return result;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const message = `"${command}" did not finish within ${controlLimits.commandTimeoutMs} ms`;
      reject(new ControlError('CONTROL_ERR_TIMEOUT', message));
    }, controlLimits.commandTimeoutMs);
  });
  return Promise.race([result, timeout]).finally(() => clearTimeout(timer));
}

async function closeServer(server: Server, clients: Set<Socket>): Promise<void> {
  // Closing the server also removes its socket file (libuv unlinks a pipe it bound).
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  for (const socket of clients) socket.destroy();
  await closed;
}
