#!/usr/bin/env node
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { askControl, ControlUnreachableError } from './client.js';
import { controlSocketName } from './protocol.js';
import { render } from './render.js';

const help = `Usage: proxyctl [--socket path | --state-dir dir] [--json] [--timeout-ms n] <command> [args]

Talks to a running fly-proxy over its control socket.

Commands:
  status              pid, state (serving/draining), strict, uptime, mode, region, catalog
  catalog <app>       the app's routing entry: machines, states, load, bands, route order
  locks               the catalog lock: holders, waiters, current and last writer
  connections         open connections per listener and upstream pools
  airtime             host load and budget; each app's rate, tokens, bytes, throttled and why
  restart             (under fly-proxy-watchdog) a new generation takes the sockets, this one drains
  drain               stop accepting, finish open connections, then exit 0 (see the README)
  loglevel [level]    show, or set, the proxy's log level (trace..fatal, silent)

Flags:
  --socket <path>     the control socket (default <state-dir>/control.sock)
  --state-dir <dir>   the proxy's --state-dir (default .fleet/fly-proxy)
  --json              print the raw JSON answer
  --timeout-ms <n>    give up when the proxy has not answered this long (default 3000)

Exit status: 0 answered; 1 the proxy answered an error; 2 usage; 3 no answer (no socket, proxy
gone, or wedged past the timeout).
`;

function usageError(message: string): never {
  process.stderr.write(`proxyctl: ${message}\n(run proxyctl --help)\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  let parsed: ReturnType<typeof parseOptions>;
  try {
    parsed = parseOptions();
  } catch (error) {
    usageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(help);
    return;
  }
  const [command, ...args] = positionals;
  if (command === undefined) usageError('missing command');
  if (values.socket !== undefined && values['state-dir'] !== undefined) {
    usageError('give --socket or --state-dir, not both');
  }
  const timeoutMs = Number(values['timeout-ms']);
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 600_000) {
    usageError(
      `--timeout-ms must be a whole number from 1 to 600000, got "${values['timeout-ms']}"`,
    );
  }
  const path = values.socket ?? join(values['state-dir'] ?? '.fleet/fly-proxy', controlSocketName);
  try {
    const answer = await askControl(path, { command, args }, timeoutMs);
    if (values.json) process.stdout.write(`${JSON.stringify(answer, null, 2)}\n`);
    if (!answer.ok) {
      if (!values.json)
        process.stderr.write(`proxyctl: ${answer.error.code}: ${answer.error.message}\n`);
      process.exitCode = 1;
      return;
    }
    if (!values.json) process.stdout.write(`${render(command, answer.result)}\n`);
  } catch (error) {
    if (!(error instanceof ControlUnreachableError)) throw error;
    process.stderr.write(`proxyctl: ${error.message}\n`);
    process.exitCode = 3;
  }
}

function parseOptions() {
  return parseArgs({
    allowPositionals: true,
    strict: true,
    options: {
      socket: { type: 'string' },
      'state-dir': { type: 'string' },
      json: { type: 'boolean', default: false },
      'timeout-ms': { type: 'string', default: '3000' },
      help: { type: 'boolean', default: false },
    },
  });
}

await main();
