import type { FlapsClient, Machine } from '@fleet/flaps-client';
import { CliError } from '../errors.js';
import { stoppedReason } from './stopped.js';

/** How often a machine is looked at while waiting for it. */
const pollMs = 250;

/**
 * Waits until the machine runs `release` and passes every check of it, or fails saying why: a
 * check reported critical after the new version started, the machine stopping on its own, or
 * `timeoutMs` passing. With no checks, started is healthy (as Fly's deploys).
 */
export async function waitHealthy(
  flaps: FlapsClient,
  app: string,
  id: string,
  expected: { releaseId: string; checks: string[] },
  timeoutMs: number,
  /** Told each new status while waiting (`starting`, `waiting for alive`): the progress line. */
  onStatus: (status: string) => void = () => undefined,
): Promise<Machine> {
  const deadline = Date.now() + timeoutMs;
  let last = 'not started yet';
  let told = '';
  while (Date.now() < deadline) {
    const machine = await flaps.getMachine(app, id);
    const release = (machine.config.metadata as Record<string, string> | undefined)?.fly_release_id;
    if (release === expected.releaseId) {
      if (
        machine.state === 'stopped' ||
        machine.state === 'failed' ||
        machine.state === 'destroyed'
      )
        throw new CliError(await stoppedReason(flaps, app, machine));
      if (machine.state === 'started') {
        const checks = new Map((machine.checks ?? []).map((check) => [check.name, check]));
        const failing = expected.checks
          .map((name) => checks.get(name))
          .find((check) => check?.status === 'critical');
        if (failing)
          throw new CliError(
            `machine ${id} failed its check ${failing.name}: ${failing.output ?? 'critical'}`,
          );
        const waiting = expected.checks.filter((name) => checks.get(name)?.status !== 'passing');
        if (waiting.length === 0) return machine;
        last = `waiting for ${waiting.join(', ')}`;
      } else last = machine.state;
    }
    if (last !== told) {
      told = last;
      onStatus(last);
    }
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
  throw new CliError(`machine ${id} was not healthy within ${timeoutMs / 1000} s (${last})`);
}
