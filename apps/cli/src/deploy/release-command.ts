import type { FlapsClient, Machine } from '@fleet/flaps-client';
import { CliError, exitCodes } from '../errors.js';
import type { Release } from './release.js';

/** How often the release command's machine is looked at while it runs. */
const pollMs = 250;
/** Lines of its output shown when it fails (flyd keeps the last 1,000 of a machine). */
const outputLinesMax = 1_000;
/** The process group Fly's release command machines carry: a deploy leaves them alone. */
export const releaseCommandGroup = 'fly_app_release_command';

export interface ReleaseCommandPlan {
  app: string;
  release: Release;
  command: string;
  region?: string;
  /** Bound on the command's run. */
  timeoutMs: number;
}

/**
 * The words of a `release_command`, as Fly splits it: at spaces, with single or double quotes
 * grouping (no variables, globs or other shell expansion). An unclosed quote is a usage error.
 */
export function commandWords(command: string): string[] {
  const words: string[] = [];
  let rest = command.trim();
  while (rest.length > 0) {
    let word = '';
    // A word is a run of quoted and bare parts with no space between them (a="b c").
    while (rest.length > 0 && !/^\s/.test(rest)) {
      const part = /^"([^"]*)"|^'([^']*)'|^([^\s"']+)/.exec(rest);
      if (!part)
        throw new CliError(
          `[deploy] release_command has an unclosed quote: ${command}`,
          exitCodes.usage,
        );
      word += part[1] ?? part[2] ?? part[3];
      rest = rest.slice(part[0].length);
    }
    words.push(word);
    rest = rest.trimStart();
  }
  if (words.length === 0) throw new CliError('[deploy] release_command is empty', exitCodes.usage);
  return words;
}

/** The release's config as a one-off run of `words`: no services or checks, never restarted. */
export function releaseCommandConfig(release: Release, words: string[]): Record<string, unknown> {
  const { services: _services, checks: _checks, mounts: _mounts, ...config } = release.config;
  return {
    ...config,
    init: { ...((config.init as Record<string, unknown>) ?? {}), exec: words },
    restart: { policy: 'no' },
    metadata: {
      ...((config.metadata as Record<string, string>) ?? {}),
      fly_process_group: releaseCommandGroup,
    },
  };
}

/**
 * Runs the release command once, as Fly does before any machine is updated: in a temporary
 * machine with the new release's image and env (and the app's secrets, which flyd gives every
 * machine of the app), without services. A non-zero exit, a launch failure or the timeout
 * throws with the command's output, so the deploy stops with the previous release serving. The
 * temporary machine is destroyed either way.
 */
export async function runReleaseCommand(
  flaps: FlapsClient,
  plan: ReleaseCommandPlan,
  say: (line: string) => void,
): Promise<void> {
  const words = commandWords(plan.command);
  const machine = await flaps.createMachine(plan.app, {
    ...(plan.region === undefined ? {} : { region: plan.region }),
    config: releaseCommandConfig(plan.release, words),
  });
  say(`running release_command in ${machine.id}: ${plan.command}`);
  try {
    const ended = await waitEnded(flaps, plan.app, machine.id, plan.timeoutMs);
    if (ended.failure !== undefined) {
      const output = await outputOf(flaps, plan.app, machine.id);
      throw new CliError(
        `release_command ${ended.failure}; the deploy stopped before any machine was updated${output}`,
      );
    }
    say('release_command succeeded');
  } finally {
    await flaps.destroyMachine(plan.app, machine.id, true);
  }
}

/** Waits for the machine to stop; `failure` says how it failed, if it did. */
async function waitEnded(
  flaps: FlapsClient,
  app: string,
  id: string,
  timeoutMs: number,
): Promise<{ failure?: string }> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const machine = await flaps.getMachine(app, id);
    if (machine.state === 'stopped' || machine.state === 'failed') return exitOf(machine);
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
  return { failure: `did not finish within ${timeoutMs / 1000} s` };
}

interface ExitEvent {
  type: string;
  request?: { error?: string; exit_event?: { exit_code: number | null; signal: string | null } };
}

/** The outcome its newest exit event records. */
function exitOf(machine: Machine): { failure?: string } {
  const exit = ((machine.events ?? []) as ExitEvent[]).find((event) => event.type === 'exit');
  const request = exit?.request;
  if (request?.error) return { failure: `could not run: ${request.error}` };
  const code = request?.exit_event?.exit_code;
  if (code === 0) return {};
  if (code === null || code === undefined)
    return { failure: `was killed (${request?.exit_event?.signal ?? 'no exit recorded'})` };
  return { failure: `exited with code ${code}` };
}

/** Its output, as lines after a header (empty when it printed nothing). */
async function outputOf(flaps: FlapsClient, app: string, id: string): Promise<string> {
  const page = await flaps.logs(app, { instance: id, limit: outputLinesMax });
  const lines = page.data.map((entry) => entry.attributes.message);
  return lines.length === 0 ? '' : `; its output:\n${lines.join('\n')}`;
}
