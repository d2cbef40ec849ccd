import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { metrics } from '@opentelemetry/api';
import type { Supervisor } from './supervisor.js';

export const statusFileName = 'watchdog.json';

/** Rewrites `<state-dir>/watchdog.json` (aside and renamed: a reader never sees half of it). */
export function writeStatusFile(
  stateDir: string,
  supervisor: Supervisor,
  watchdogPid: number,
): void {
  const path = join(stateDir, statusFileName);
  const temporary = `${path}.${watchdogPid}.tmp`;
  const status = { watchdogPid, updatedAt: new Date().toISOString(), ...supervisor.status() };
  writeFileSync(temporary, `${JSON.stringify(status, null, 2)}\n`);
  renameSync(temporary, path);
}

/** The watchdog's instruments, read from the supervisor at collection time. */
export function registerWatchdogMetrics(supervisor: Supervisor): void {
  const meter = metrics.getMeter('fleet.fly-proxy-watchdog');
  meter
    .createObservableCounter('watchdog_restarts', {
      description: 'proxies restarted by the watchdog, by reason (unanswered, exited)',
    })
    .addCallback((result) => {
      for (const [reason, count] of Object.entries(supervisor.status().restartsByReason)) {
        result.observe(count, { reason });
      }
    });
  meter
    .createObservableCounter('watchdog_handoffs', {
      description: 'restarts without dropping (SIGHUP, proxyctl restart) completed',
    })
    .addCallback((result) => result.observe(supervisor.status().handoffs));
  meter
    .createObservableGauge('watchdog_proxies_draining', {
      description: 'earlier proxy generations still draining their connections',
    })
    .addCallback((result) => result.observe(supervisor.status().drainingPids.length));
  meter
    .createObservableGauge('watchdog_proxy_answering', {
      description: '1 while the proxy answers its control channel, else 0',
    })
    .addCallback((result) => result.observe(supervisor.status().state === 'running' ? 1 : 0));
}
