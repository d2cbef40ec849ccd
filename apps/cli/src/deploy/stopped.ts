import type { ExitEvent, FlapsClient, LogLine, Machine } from '@fleet/flaps-client';

/** Lines of a machine's own output a failed deploy shows. */
const outputLinesShown = 10;
/** Log pages read at most for them (1,000 lines each, oldest first). */
const logPagesMax = 20;

/**
 * Why a machine of a deploy stopped instead of starting, as the deploy's error says it: how its
 * process ended (its newest exit event), the last lines it wrote since it was last started, and
 * the command that shows them all. What cannot be had (a worker that does not answer for its
 * logs) is left out: the reason is never lost to it.
 */
export async function stoppedReason(
  flaps: FlapsClient,
  app: string,
  machine: Machine,
): Promise<string> {
  const events = [...(machine.events ?? [])].sort((a, b) => b.timestamp - a.timestamp);
  const exit = events.find((event) => event.type === 'exit' && event.request?.exit_event);
  const started = events.find(
    (event) => event.type === 'start' && (exit === undefined || event.timestamp <= exit.timestamp),
  );
  const lines = await lastOutput(flaps, app, machine.id, started?.timestamp ?? 0).catch(() => []);
  const how = exit?.request?.exit_event ? `: ${ended(exit.request.exit_event)}` : '';
  const output =
    lines.length === 0
      ? ''
      : `\nits last output:\n${lines.map((line) => `  ${line.message}`).join('\n')}`;
  return `machine ${machine.id} ${machine.state} instead of starting${how}${output}\nall of its logs: fleet logs -a ${app} -i ${machine.id} --no-tail`;
}

function ended(exit: ExitEvent): string {
  if (exit.oom_killed) return 'it ran out of memory (killed by the OOM killer)';
  if (exit.signal) return `it was killed by ${exit.signal}`;
  return `it exited with code ${exit.exit_code}`;
}

/** The machine's last lines written at or after `sinceMs`, oldest first. */
async function lastOutput(
  flaps: FlapsClient,
  app: string,
  instance: string,
  sinceMs: number,
): Promise<LogLine[]> {
  const kept: LogLine[] = [];
  let token: string | undefined;
  for (let page = 0; page < logPagesMax; page++) {
    const answer = await flaps.logs(app, { instance, nextToken: token, limit: 1000 });
    for (const { attributes } of answer.data) {
      if (Date.parse(attributes.timestamp) < sinceMs) continue;
      kept.push(attributes);
      if (kept.length > outputLinesShown) kept.shift();
    }
    if (answer.data.length < 1000) break;
    token = answer.meta.next_token;
  }
  return kept;
}
