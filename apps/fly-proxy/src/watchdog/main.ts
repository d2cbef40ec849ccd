#!/usr/bin/env node
import { join, resolve } from 'node:path';
import {
  createHttpServer,
  createLogger,
  listenHttp,
  lockState,
  onShutdown,
  parseConfig,
  runMain,
  startMetrics,
  UsageError,
} from '@fleet/service';
import { askControl, ControlUnreachableError } from '../control/client.js';
import { type ControlAnswer, controlSocketName } from '../control/protocol.js';
import { ticketKeysFileVariable } from '../handoff/messages.js';
import { ensureTicketKeys } from '../handoff/ticket-keys.js';
import { registerWatchdogMetrics } from '../metrics.js';
import { instanceLockName, watchdogHolderName } from '../one-instance.js';
import { writeStatusFile } from './status.js';
import { Supervisor } from './supervisor.js';
import { scheduleRotation } from './ticket-rotation.js';

const spec = {
  'state-dir': {
    type: 'string',
    default: '.fleet/fly-proxy',
    description:
      "the proxy's state directory (passed on as its --state-dir): socket, status, incidents",
  },
  'unanswered-seconds': {
    type: 'number',
    default: 3,
    min: 1,
    max: 600,
    description: 'control channel silent this long: report, kill and restart the proxy',
  },
  'ping-interval-ms': {
    type: 'number',
    default: 1_000,
    min: 50,
    max: 60_000,
    description: 'how often the control channel is asked (`locks`)',
  },
  'start-timeout-seconds': {
    type: 'number',
    default: 30,
    min: 1,
    max: 3_600,
    description: 'a new proxy must answer its control channel within this',
  },
  'report-wait-ms': {
    type: 'number',
    default: 1_000,
    min: 0,
    max: 60_000,
    description: "bound on waiting for the proxy's diagnostic report before the kill",
  },
  'backoff-ms-min': {
    type: 'number',
    default: 1_000,
    min: 1,
    max: 600_000,
    description: 'delay before the second restart in a row; doubles each time after',
  },
  'backoff-ms-max': {
    type: 'number',
    default: 30_000,
    min: 1,
    max: 3_600_000,
    description: 'bound on the delay between restarts',
  },
  'stable-seconds': {
    type: 'number',
    default: 30,
    min: 1,
    max: 86_400,
    description: 'a proxy answering this long resets the backoff (the next restart is immediate)',
  },
  'stop-grace-ms': {
    type: 'number',
    default: 10_000,
    min: 1,
    max: 600_000,
    description: 'on stop: SIGTERM the proxy, SIGKILL it past this',
  },
  'log-tail-lines': {
    type: 'number',
    default: 200,
    min: 1,
    max: 100_000,
    description: "recent proxy output lines kept for an incident's log-tail.txt",
  },
  'ticket-keys-rotate-hours': {
    type: 'number',
    default: 12,
    min: 1,
    max: 8_760,
    description:
      'the TLS session ticket keys shared by every proxy generation are replaced this often',
  },
  'metrics-listen': {
    type: 'string',
    format: 'address',
    default: '127.0.0.1:0',
    description: "the watchdog's /metrics and /status (announced as `watchdog`)",
  },
} as const;

runMain(async () => {
  const argv = process.argv.slice(2);
  const split = argv.indexOf('--');
  const proxyArgs = split === -1 ? [] : argv.slice(split + 1);
  const config = parseConfig(
    {
      name: 'fly-proxy-watchdog [flags] -- [fly-proxy flags]',
      summary: 'Runs fly-proxy and restarts it when its control channel stops answering.',
    },
    spec,
    split === -1 ? argv : argv.slice(0, split),
  );
  if (!config) return;
  if (proxyArgs.some((arg) => arg === '--state-dir' || arg.startsWith('--state-dir='))) {
    throw new UsageError(
      'give --state-dir to the watchdog (before --); it passes it on to the proxy',
    );
  }
  for (const flag of ['--standby', '--strict-second-instance']) {
    if (proxyArgs.includes(flag))
      throw new UsageError(
        `${flag} is for a proxy run alone: the watchdog holds the instance lock for its proxies`,
      );
  }
  if (config['backoff-ms-min'] > config['backoff-ms-max']) {
    throw new UsageError('--backoff-ms-min must not exceed --backoff-ms-max');
  }
  const stateDir = config['state-dir'];
  // One watchdog per state directory; the kernel frees the lock however this process dies.
  const stateLock = lockState(join(stateDir, 'watchdog.lock'), 'fly-proxy-watchdog');
  await refuseLiveProxy(join(stateDir, controlSocketName));
  // The one-instance lock, held here for every generation (see src/one-instance.ts): two
  // generations overlap during a handoff, an unrelated proxy on this directory is refused.
  const instanceLock = lockState(join(stateDir, instanceLockName), watchdogHolderName);
  const ticketKeysFile = join(stateDir, 'tls-ticket-keys');
  const rotateMs = config['ticket-keys-rotate-hours'] * 3_600_000;
  const { ageMs } = ensureTicketKeys(ticketKeysFile, rotateMs);
  const logger = createLogger('fly-proxy-watchdog');
  const metricsExport = startMetrics('fly-proxy-watchdog');
  const supervisor = new Supervisor({
    stateDir,
    proxyArgs,
    unansweredMs: config['unanswered-seconds'] * 1000,
    pingIntervalMs: config['ping-interval-ms'],
    startTimeoutMs: config['start-timeout-seconds'] * 1000,
    reportWaitMs: config['report-wait-ms'],
    backoffMsMin: config['backoff-ms-min'],
    backoffMsMax: config['backoff-ms-max'],
    stableMs: config['stable-seconds'] * 1000,
    stopGraceMs: config['stop-grace-ms'],
    logTailLines: config['log-tail-lines'],
    env: { [ticketKeysFileVariable]: resolve(ticketKeysFile) },
    logger,
  });
  const rotation = scheduleRotation(ticketKeysFile, rotateMs, ageMs, () => {
    supervisor.broadcast({ type: 'fleet:ticket-keys-rotated' });
    logger.info({ event: 'ticket_keys_rotated' }, 'TLS ticket keys rotated');
  });
  // SIGHUP: restart without dropping (systemd's ExecReload=kill -HUP $MAINPID).
  process.on('SIGHUP', () => void supervisor.handoff('SIGHUP'));
  supervisor.onChange = () => {
    try {
      writeStatusFile(stateDir, supervisor, process.pid);
    } catch (error) {
      // A full disk must not stop the supervision; /status and /metrics still tell.
      logger.warn({ err: error }, 'cannot write the watchdog status file');
    }
  };
  supervisor.onUsageError = () => {
    instanceLock.release();
    stateLock.release();
    process.exit(2);
  };
  registerWatchdogMetrics(supervisor);
  const server = createHttpServer({ logger, metrics: metricsExport });
  server.get('/status', async () => supervisor.status());

  // SIGTERM, SIGINT, or the process that started the watchdog gone: the proxy goes first.
  onShutdown(
    logger,
    async () => {
      rotation.stop();
      await supervisor.stop();
      await server.close();
      await metricsExport.shutdown();
      instanceLock.release();
      stateLock.release();
    },
    { timeoutMs: config['stop-grace-ms'] + 5_000 },
  );
  supervisor.start();
  await listenHttp(server, config['metrics-listen'], 'watchdog');
});

/**
 * A process already accepting on the socket is a proxy outside this watchdog (answering, or
 * wedged: accepted but silent): starting another beside it would fight it for the socket.
 */
async function refuseLiveProxy(socket: string): Promise<void> {
  let answer: ControlAnswer;
  try {
    answer = await askControl(socket, { command: 'status', args: [] }, 1_000);
  } catch (error) {
    if (error instanceof ControlUnreachableError && error.reason === 'timeout') {
      throw new UsageError(`a process accepts on ${socket} but does not answer: stop it first`);
    }
    return; // no socket, or nobody behind it: free
  }
  const pid = answer.ok ? (answer.result as { pid?: number }).pid : undefined;
  throw new UsageError(`a proxy (pid ${pid ?? '?'}) already answers on ${socket}: stop it first`);
}
