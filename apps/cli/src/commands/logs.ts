import type { LogLine } from '@fleet/flaps-client';
import { Command } from 'commander';
import pc from 'picocolors';
import { say } from '../output.js';
import { appContext, withApp, withJson } from './shared.js';

/** A line as flyctl prints it: time, app[machine] region [level] message. */
function formatLine(line: LogLine): string {
  const level = line.level === 'error' ? pc.red(line.level) : pc.blue(line.level);
  const gap = line.dropped_before ? pc.yellow(`(${line.dropped_before} lines dropped) `) : '';
  return `${pc.dim(line.timestamp)} ${line.meta.app}[${line.instance}] ${line.region} [${level}] ${gap}${line.message}\n`;
}

/** `fleet logs`: every machine's output, live, with machine id and region on each line. */
export function logsCommand(): Command {
  return withJson(
    withApp(
      new Command('logs')
        .description("the app's logs: every machine on every worker, live (Ctrl-C to stop)")
        .option('-i, --instance <id>', 'only this machine')
        .option('-r, --region <code>', 'only this region')
        .option('--no-tail', 'print the kept lines and exit'),
    ),
  ).action(
    async (options: { instance?: string; region?: string; tail: boolean }, command: Command) => {
      const { flags, app, flaps } = appContext(command);
      const query = { instance: options.instance, region: options.region };
      const print = (line: LogLine) =>
        process.stdout.write(flags.json ? `${JSON.stringify(line)}\n` : formatLine(line));
      if (!options.tail) {
        let token: string | undefined;
        for (;;) {
          const page = await flaps.logs(app, { ...query, nextToken: token, limit: 1000 });
          for (const entry of page.data) print(entry.attributes);
          for (const host of page.meta.unreachable_hosts ?? [])
            say(`worker ${host} did not answer`);
          if (page.data.length < 1000) return;
          token = page.meta.next_token;
        }
      }
      const controller = new AbortController();
      const stop = () => controller.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        for await (const line of flaps.followLogs(app, query, controller.signal)) print(line);
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
    },
  );
}
