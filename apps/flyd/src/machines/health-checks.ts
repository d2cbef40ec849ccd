import { connect } from 'node:net';
import { durationMs } from '@fleet/machine-config';
import type { Logger } from '@fleet/service';
import { present } from '@fleet/service/invariant';
import { request } from 'undici';
import type { MachineRecord } from './machine-store.js';

/** A check from the machine config (Fly's `checks` map). */
export interface CheckConfig {
  type?: 'tcp' | 'http';
  port?: number;
  path?: string;
  method?: string;
  interval?: string | number;
  timeout?: string | number;
  grace_period?: string | number;
}

/** Where a check connects. */
interface Target {
  host: string;
  port: number;
}

/** `warning` until a started machine's check has run once (as Fly shows a new check). */
export type CheckStatus = 'passing' | 'warning' | 'critical';

export type CheckReport = (
  machineId: string,
  name: string,
  status: CheckStatus,
  output: string,
) => void;

/**
 * Runs each started machine's checks (tcp: the port accepts a connection; http: a request
 * answers 2xx/3xx) every `interval` once `grace_period` has passed, and reports each change of
 * status. A machine in a network of its own is checked on the port the check names (a service's
 * check: its internal port); one on the host's loopback has one port, its own, whatever the check
 * names.
 */
export class HealthChecks {
  readonly #timers = new Map<string, NodeJS.Timeout[]>();
  readonly #last = new Map<string, CheckStatus>();

  constructor(
    private readonly report: CheckReport,
    private readonly logger: Logger,
  ) {}

  /**
   * Follows a machine's state: checks run while it is started. Each starts as `warning`, so a
   * reader (a deploy waiting for the new version to be healthy) never takes the last version's
   * `passing` for this one's.
   */
  stateChanged(machine: MachineRecord): void {
    this.stop(machine.id);
    if (machine.state !== 'started' || machine.port === null) return;
    const timers: NodeJS.Timeout[] = [];
    const host = machine.ip ?? '127.0.0.1';
    for (const [name, check, checkPort] of checksOf(machine)) {
      this.#last.set(`${machine.id}/${name}`, 'warning');
      this.report(machine.id, name, 'warning', 'waiting for the first check');
      try {
        const intervalMs = Math.max(duration(check.interval, 15_000), 100);
        const timeoutMs = duration(check.timeout, 2_000);
        const graceMs = duration(check.grace_period, 0);
        const own = present(machine.port, `the port of started machine ${machine.id}`);
        const port = machine.ip === null ? own : (checkPort ?? own);
        const run = () => void this.#run(machine.id, name, check, { host, port }, timeoutMs);
        const first = setTimeout(() => {
          run();
          timers.push(setInterval(run, intervalMs));
        }, graceMs);
        timers.push(first);
      } catch (error) {
        this.report(machine.id, name, 'critical', `bad check config: ${(error as Error).message}`);
      }
    }
    this.#timers.set(machine.id, timers);
  }

  stop(machineId: string): void {
    for (const timer of this.#timers.get(machineId) ?? []) clearTimeout(timer);
    this.#timers.delete(machineId);
  }

  stopAll(): void {
    for (const id of [...this.#timers.keys()]) this.stop(id);
  }

  async #run(
    machineId: string,
    name: string,
    check: CheckConfig,
    target: Target,
    timeoutMs: number,
  ): Promise<void> {
    const output = await (check.type === 'http'
      ? httpCheck(target, check, timeoutMs)
      : tcpCheck(target, timeoutMs));
    const status: CheckStatus = output === null ? 'passing' : 'critical';
    const key = `${machineId}/${name}`;
    if (this.#last.get(key) === status || !this.#timers.has(machineId)) return;
    this.#last.set(key, status);
    if (status === 'critical')
      this.logger.warn({ machine: machineId, check: name, output }, 'health check failing');
    this.report(machineId, name, status, output ?? 'ok');
  }
}

/**
 * A machine's checks by name: its `checks` map, and each service's `checks` named as Fly names
 * them (`servicecheck-00-http-8080`: position in the service, type, internal port).
 */
function checksOf(machine: MachineRecord): [string, CheckConfig, number | undefined][] {
  const checks: [string, CheckConfig, number | undefined][] = Object.entries(
    (machine.config.checks ?? {}) as Record<string, CheckConfig>,
  ).map(([name, check]) => [name, check, check.port]);
  const services = (machine.config.services ?? []) as {
    internal_port: number;
    checks?: CheckConfig[];
  }[];
  for (const service of services)
    for (const [index, check] of (service.checks ?? []).entries())
      checks.push([
        `servicecheck-${String(index).padStart(2, '0')}-${check.type ?? 'tcp'}-${service.internal_port}`,
        check,
        service.internal_port,
      ]);
  return checks;
}

/** null when the port accepts a connection within the timeout, else why not. */
function tcpCheck({ host, port }: Target, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: timeoutMs });
    socket.once('connect', () => {
      socket.destroy();
      resolve(null);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(`tcp: no connection within ${timeoutMs} ms`);
    });
    socket.once('error', (error) => resolve(`tcp: ${error.message}`));
  });
}

async function httpCheck(
  { host, port }: Target,
  check: CheckConfig,
  timeoutMs: number,
): Promise<string | null> {
  try {
    const answer = await request(`http://${host}:${port}${check.path ?? '/'}`, {
      method: (check.method ?? 'GET').toUpperCase() as 'GET',
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: AbortSignal.timeout(timeoutMs),
    });
    await answer.body.dump();
    return answer.statusCode < 400 ? null : `http: status ${answer.statusCode}`;
  } catch (error) {
    return `http: ${(error as Error).message}`;
  }
}

/** A check's duration field in milliseconds (`fallbackMs` when unset); a bad one throws. */
function duration(value: string | number | undefined, fallbackMs: number): number {
  if (value === undefined) return fallbackMs;
  const ms = durationMs(value);
  if (ms === undefined) throw new Error(`${JSON.stringify(value)} is not a duration like 10s`);
  return ms;
}
