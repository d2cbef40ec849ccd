import type { FlapsClient, Machine } from '@fleet/flaps-client';
import { CliError } from '../errors.js';
import type { MountSpec } from '../fly-toml/mounts.js';
import type { DeployStrategy } from '../fly-toml/types.js';
import { machineLine } from '../progress.js';
import { waitHealthy } from './health.js';
import { checkNames, processGroupOf, type Release, releaseIdOf } from './release.js';
import { releaseCommandGroup, runReleaseCommand } from './release-command.js';
import { createWithVolume, mountedVolume, withMount } from './volumes.js';

export interface DeployPlan {
  app: string;
  release: Release;
  strategy: DeployStrategy;
  /** Machines updated at once by `rolling`: a count, or below 1 a share of the machines. */
  maxUnavailable: number;
  /** Bound on each machine's wait to be started and healthy. */
  waitTimeoutMs: number;
  /** Machines a first deploy creates. */
  initialCount: number;
  region?: string;
  /** `[deploy] release_command`: run once before any machine is updated. */
  releaseCommand?: string;
  /** `[mounts]`: each machine on a volume of its own. */
  mount?: MountSpec;
}

/** What the deploy says as it goes: one line per machine and step. */
export type Progress = (line: string) => void;

/** Lease time: a deploy that dies leaves its machines leased this long at most. */
const leaseSeconds = 600;

/**
 * Puts `release` on the app's machines with Fly's strategies. Every machine is leased first, so
 * two deploys of one app never interleave; each new or updated machine must be started and pass
 * its checks before the next step; a machine that fails them stops the deploy, and the machines
 * that had not moved keep serving the previous release (a failed rolling update is rolled back
 * on that machine). Machines already at the release are left alone: a deploy is resumable.
 */
export async function deploy(flaps: FlapsClient, plan: DeployPlan, say: Progress): Promise<void> {
  const machines = (await flaps.listMachines(plan.app)).filter(
    (machine) =>
      machine.state !== 'destroyed' &&
      machine.state !== 'destroying' &&
      processGroupOf(machine) !== releaseCommandGroup,
  );
  const release = () =>
    plan.releaseCommand === undefined
      ? undefined
      : runReleaseCommand(
          flaps,
          { ...plan, command: plan.releaseCommand, timeoutMs: plan.waitTimeoutMs },
          say,
        );
  if (machines.length === 0) {
    await release();
    return firstDeploy(flaps, plan, say);
  }
  const leases = await leaseAll(flaps, plan.app, machines);
  try {
    const outdated = machines.filter((machine) => releaseIdOf(machine) !== plan.release.id);
    // Before anything moves: every machine to update must have its volume (see releaseConfigOf).
    for (const machine of outdated) releaseConfigOf(plan, machine);
    const [first] = outdated;
    if (first === undefined) {
      say(`every machine already runs release ${plan.release.id}`);
      return;
    }
    await release(); // under the leases: two deploys never run it at once
    say(
      `release ${plan.release.id}: ${outdated.length} of ${machines.length} machines to update (${plan.strategy})`,
    );
    const step = { flaps, plan, leases, say };
    if (plan.strategy === 'immediate') await immediate(step, outdated);
    else if (plan.strategy === 'bluegreen') await bluegreen(step, outdated);
    else {
      if (plan.strategy === 'canary') await canary(step, first);
      await rolling(step, outdated);
    }
  } finally {
    for (const [id, nonce] of leases)
      await flaps.releaseLease(plan.app, id, nonce).catch(() => undefined); // destroyed ones
  }
}

interface Step {
  flaps: FlapsClient;
  plan: DeployPlan;
  leases: Map<string, string>;
  say: Progress;
}

const expectedOf = (plan: DeployPlan) => ({
  releaseId: plan.release.id,
  checks: checkNames(plan.release.config),
});

/** Waits for the machine to be healthy at the release under its progress line (progress.ts). */
function healthy(flaps: FlapsClient, plan: DeployPlan, machine: Machine, done: string) {
  const name = `  ${machine.id} (${machine.region})`;
  return machineLine(
    name,
    (status) =>
      waitHealthy(flaps, plan.app, machine.id, expectedOf(plan), plan.waitTimeoutMs, status),
    () => `${name} ${done}`,
  );
}

async function firstDeploy(flaps: FlapsClient, plan: DeployPlan, say: Progress): Promise<void> {
  say(`release ${plan.release.id}: creating ${plan.initialCount} machine(s)`);
  for (let index = 0; index < plan.initialCount; index++) {
    const machine = await create(flaps, plan, plan.region);
    await healthy(flaps, plan, machine, 'started, healthy');
  }
}

async function create(flaps: FlapsClient, plan: DeployPlan, region: string | undefined) {
  if (plan.mount) {
    const { source, destination, sizeGb } = plan.mount;
    const spec = { name: source, path: destination, sizeGb };
    return createWithVolume(flaps, plan.app, spec, region, plan.release.config);
  }
  return flaps.createMachine(plan.app, {
    ...(region === undefined ? {} : { region }),
    config: plan.release.config,
  });
}

/**
 * The release's config for an existing machine: with `[mounts]`, mounting the volume the
 * machine has (at the fly.toml's destination). A machine without one cannot get it by an update
 * — a volume lives on one worker — so the deploy refuses before touching anything, as flyctl.
 */
function releaseConfigOf(plan: DeployPlan, machine: Machine): Record<string, unknown> {
  if (!plan.mount) return plan.release.config;
  const mounted = mountedVolume(machine.config);
  if (!mounted)
    throw new CliError(
      `machine ${machine.id} has no volume, and fly.toml has [mounts]: destroy it (\`fleet machines destroy ${machine.id} --force\`) and deploy again, which creates machines with their volume`,
    );
  return withMount(plan.release.config, {
    volume: mounted.volume,
    path: plan.mount.destination,
    name: mounted.name ?? plan.mount.source,
  });
}

/** Leases every machine; if one is held by someone else, gives the others back and stops. */
async function leaseAll(flaps: FlapsClient, app: string, machines: Machine[]) {
  const leases = new Map<string, string>();
  for (const machine of machines) {
    try {
      leases.set(
        machine.id,
        await flaps.acquireLease(app, machine.id, leaseSeconds, 'fleet deploy'),
      );
    } catch (error) {
      for (const [id, nonce] of leases)
        await flaps.releaseLease(app, id, nonce).catch(() => undefined);
      throw new CliError(
        `machine ${machine.id} is leased (another deploy of ${app} running?): ${(error as Error).message}`,
      );
    }
  }
  return leases;
}

async function update(step: Step, machine: Machine, config: Record<string, unknown>) {
  await step.flaps.updateMachine(
    step.plan.app,
    machine.id,
    { config },
    step.leases.get(machine.id),
  );
}

/** All at once, not waiting for checks. */
async function immediate(step: Step, outdated: Machine[]): Promise<void> {
  for (const machine of outdated) {
    await update(step, machine, releaseConfigOf(step.plan, machine));
    step.say(`  ${machine.id} updated`);
  }
}

/**
 * Whether the machine ran when the deploy began. One that did not (stopped by autostop, say) is
 * updated and left as it was, as flyctl does: the release starts on it when the proxy starts it.
 */
function ran(machine: Machine): boolean {
  return machine.state === 'started' || machine.state === 'starting';
}

/** Puts the machine's previous config back, and starts it again if it ran before the deploy. */
async function rollBack(step: Step, machine: Machine): Promise<void> {
  await update(step, machine, machine.config);
  if (!ran(machine)) return;
  const now = await step.flaps.getMachine(step.plan.app, machine.id);
  if (!ran(now))
    await step.flaps.startMachine(step.plan.app, machine.id, step.leases.get(machine.id));
}

/** `maxUnavailable` machines at a time, each batch healthy before the next; a failure rolls back. */
async function rolling(step: Step, outdated: Machine[]): Promise<void> {
  const { plan } = step;
  const batch =
    plan.maxUnavailable >= 1
      ? Math.floor(plan.maxUnavailable)
      : Math.max(1, Math.ceil(outdated.length * plan.maxUnavailable));
  for (let start = 0; start < outdated.length; start += batch) {
    const group = outdated.slice(start, start + batch);
    for (const machine of group) await update(step, machine, releaseConfigOf(plan, machine));
    for (const machine of group) {
      const position = `[${start + group.indexOf(machine) + 1}/${outdated.length}]`;
      if (!ran(machine)) {
        step.say(`  ${machine.id} (${machine.region}) updated, left ${machine.state} ${position}`);
        continue;
      }
      try {
        await healthy(step.flaps, plan, machine, `updated, healthy ${position}`);
      } catch (error) {
        for (const back of group) await rollBack(step, back);
        throw new CliError(
          `${(error as Error).message}\ndeploy stopped: ${group.map((one) => one.id).join(', ')} rolled back to the previous release; ${outdated.length - start - group.length} machine(s) not touched`,
        );
      }
    }
  }
}

/** One extra machine with the release first; healthy, it goes and the rest roll. */
async function canary(step: Step, model: Machine): Promise<void> {
  const { flaps, plan } = step;
  const canaryMachine = await create(flaps, plan, model.region);
  try {
    await healthy(flaps, plan, canaryMachine, 'canary healthy');
  } catch (error) {
    throw new CliError(
      `${(error as Error).message}\ndeploy stopped: the canary failed; no machine was touched`,
    );
  } finally {
    await flaps.destroyMachine(plan.app, canaryMachine.id, true);
  }
  step.say(`  canary ${canaryMachine.id} healthy, removed`);
}

/** A full new set beside the old; all healthy, the old ones go. */
async function bluegreen(step: Step, outdated: Machine[]): Promise<void> {
  const { flaps, plan } = step;
  const green: Machine[] = [];
  try {
    for (const machine of outdated) green.push(await create(flaps, plan, machine.region));
    for (const machine of green) await healthy(flaps, plan, machine, 'green, healthy');
  } catch (error) {
    for (const machine of green) await flaps.destroyMachine(plan.app, machine.id, true);
    throw new CliError(
      `${(error as Error).message}\ndeploy stopped: the green machines were removed; blue keeps serving`,
    );
  }
  for (const machine of outdated) {
    await flaps.destroyMachine(plan.app, machine.id, true, step.leases.get(machine.id));
    step.leases.delete(machine.id);
    step.say(`  blue ${machine.id} removed`);
  }
}
