import { createHash } from 'node:crypto';
import type { Machine } from '@fleet/flaps-client';

/**
 * A release: the machine config a deploy puts on every machine, marked with the hash of what it
 * says (`metadata.fly_release_id`, as Fly marks machines with their release). A machine already
 * at the release is left alone, which makes a deploy that stopped half way resumable: run it
 * again and it goes on with the machines that still have the old one.
 */
export interface Release {
  id: string;
  config: Record<string, unknown>;
}

/** The release of `config`; `mount` (the fly.toml's `[mounts]`, kept per machine) counts in its id. */
export function releaseOf(config: Record<string, unknown>, mount?: unknown): Release {
  const described = mount === undefined ? config : [config, mount];
  const id = createHash('sha256').update(JSON.stringify(described)).digest('hex').slice(0, 12);
  const metadata = { ...((config.metadata as Record<string, string>) ?? {}), fly_release_id: id };
  return { id, config: { ...config, metadata } };
}

export function releaseIdOf(machine: Machine): string | undefined {
  return (machine.config.metadata as Record<string, string> | undefined)?.fly_release_id;
}

/** Fly's process group of a machine (`app`; `fly_app_release_command` for a release command's). */
export function processGroupOf(machine: Machine): string | undefined {
  return (machine.config.metadata as Record<string, string> | undefined)?.fly_process_group;
}

/** The names of the checks flyd runs for a config: its own, and its services' (Fly's names). */
export function checkNames(config: Record<string, unknown>): string[] {
  const names = Object.keys((config.checks as Record<string, unknown>) ?? {});
  const services = (config.services ?? []) as {
    internal_port: number;
    checks?: { type?: string }[];
  }[];
  for (const service of services)
    for (const [index, check] of (service.checks ?? []).entries())
      names.push(
        `servicecheck-${String(index).padStart(2, '0')}-${check.type ?? 'tcp'}-${service.internal_port}`,
      );
  return names;
}
