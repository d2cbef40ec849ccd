import assert from 'node:assert/strict';
import { checkMachineConfig, durationMs, MachineConfigError } from '@fleet/machine-config';
import { CliError, exitCodes } from '../errors.js';
import type { FlyCheck, FlyService, FlyToml, FlyVm } from './types.js';

/** Seconds of a fly.toml duration (`"10s"`, `"500ms"`, `"5m"`, or seconds); a bad one is a usage error. */
export function seconds(value: string | number): number {
  const ms = durationMs(value);
  if (ms === undefined)
    throw new CliError(`${JSON.stringify(value)} is not a duration like 10s`, exitCodes.usage);
  return ms / 1000;
}

/** Megabytes of a fly.toml size (`"512mb"`, `"1gb"`, or megabytes). */
export function megabytes(value: string | number): number {
  if (typeof value === 'number') return value;
  const [, amount, unit] = /^([0-9]+) ?([kKmMgG])/.exec(value) ?? [];
  // The fly.toml schema let only such sizes through (see read.ts).
  assert.ok(amount !== undefined && unit !== undefined, `${value} is not a size like 512mb`);
  const scale = unit.toLowerCase();
  return scale === 'g'
    ? Number(amount) * 1024
    : scale === 'k'
      ? Number(amount) / 1024
      : Number(amount);
}

/** A duration as the machine config takes it (Go's `"10s"`). */
const goDuration = (value: string | number | undefined) =>
  value === undefined ? undefined : `${seconds(value)}s`;

function machineCheck(check: FlyCheck, internalPort: number | undefined) {
  return {
    type: check.type ?? 'http',
    port: check.port ?? internalPort,
    interval: goDuration(check.interval),
    timeout: goDuration(check.timeout),
    grace_period: goDuration(check.grace_period),
    method: check.method?.toUpperCase(),
    path: check.path,
    protocol: check.protocol,
    tls_skip_verify: check.tls_skip_verify,
    headers: check.headers
      ? Object.entries(check.headers).map(([name, value]) => ({ name, values: [value] }))
      : undefined,
  };
}

function guest(vm: FlyVm | undefined) {
  if (!vm) return undefined;
  const size = /^(shared-cpu|performance)-([0-9]+)x$/.exec(vm.size ?? '');
  const sizeKind = size && (size[1] === 'performance' ? 'performance' : 'shared');
  const cpuKind = vm.cpu_kind ?? sizeKind ?? 'shared';
  const cpus = vm.cpus ?? (size ? Number(size[2]) : 1);
  const memory = vm.memory_mb ?? (vm.memory === undefined ? undefined : megabytes(vm.memory));
  return {
    cpu_kind: cpuKind,
    cpus,
    memory_mb: memory ?? (cpuKind === 'performance' ? 2_048 * cpus : 256 * cpus),
  };
}

/** Fly's http_service: ports 80 (http) and 443 (tls + http) to its internal port. */
function httpService(config: FlyToml) {
  const service = config.http_service;
  if (!service) return [];
  return [
    {
      protocol: 'tcp',
      internal_port: service.internal_port,
      ports: [
        { port: 80, handlers: ['http'], force_https: service.force_https ?? false },
        { port: 443, handlers: ['tls', 'http'] },
      ],
      concurrency: service.concurrency,
      autostop: service.auto_stop_machines,
      autostart: service.auto_start_machines,
      min_machines_running: service.min_machines_running,
      checks: service.checks?.map((check) => machineCheck(check, service.internal_port)),
    },
  ];
}

function service(entry: FlyService) {
  return {
    protocol: entry.protocol ?? 'tcp',
    internal_port: entry.internal_port,
    ports: entry.ports,
    concurrency: entry.concurrency,
    autostop: entry.auto_stop_machines,
    autostart: entry.auto_start_machines,
    min_machines_running: entry.min_machines_running,
    checks: [
      ...(entry.tcp_checks ?? []).map((check) =>
        machineCheck({ ...check, type: 'tcp' }, entry.internal_port),
      ),
      ...(entry.http_checks ?? []).map((check) =>
        machineCheck({ ...check, type: 'http' }, entry.internal_port),
      ),
    ],
  };
}

/** Drops undefined fields, so the config holds only what was said. */
function pruned<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/**
 * The machine config a fly.toml describes for `image`: env (values as strings), services from
 * `http_service` and `[[services]]`, top-level `[checks]`, the first `[[vm]]` as the guest, and
 * `kill_signal`/`kill_timeout` as the stop config (`[mounts]` is per machine: see mounts.ts). Checked against the machine config schema
 * flaps applies, so a mistake is reported before anything is deployed.
 */
export function machineConfigOf(config: FlyToml, image: string): Record<string, unknown> {
  const machine = pruned({
    image,
    env: config.env
      ? Object.fromEntries(Object.entries(config.env).map(([name, value]) => [name, String(value)]))
      : undefined,
    services: [...httpService(config), ...(config.services ?? []).map(service)],
    checks: config.checks
      ? Object.fromEntries(
          Object.entries(config.checks).map(([name, check]) => [
            name,
            machineCheck(check, config.http_service?.internal_port),
          ]),
        )
      : undefined,
    guest: guest(config.vm?.[0]),
    stop_config:
      config.kill_signal || config.kill_timeout !== undefined
        ? { signal: config.kill_signal, timeout: goDuration(config.kill_timeout) }
        : undefined,
    restart: { policy: 'on-failure' },
    metadata: { fly_platform_version: 'v2', fly_process_group: 'app' },
  });
  try {
    checkMachineConfig(machine);
  } catch (error) {
    if (!(error instanceof MachineConfigError)) throw error;
    throw new CliError(
      `fly.toml describes a machine Fleet refuses: ${error.message}`,
      exitCodes.usage,
    );
  }
  return machine;
}
