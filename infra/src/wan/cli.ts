#!/usr/bin/env node

import { request } from 'node:http';
import { join } from 'node:path';
import { present } from '@fleet/service/invariant';
import { repoRoot } from '../launcher/paths.js';
import { controlSocketName } from './control-server.js';
import { statusText, type WanStatus } from './status-text.js';

const usage = `usage: fleet-wan [--state-dir DIR] [--json] <command>
  status                                   hosts, addresses, links, partitions, counters
  link <region> <region> [--latency-ms N] [--loss SHARE]
  partition <host-or-region>...            cut that set off from every other host
  heal                                     remove every partition
  kill|pause|resume|restart <host>         a host's processes (restart: its servers again)
Talks to a running \`npm start -- --topology ...\` through <state-dir>/${controlSocketName}
(default state dir: <repo>/.fleet). --json prints the control server's JSON answer as it is.`;

function fail(message: string): never {
  process.stderr.write(`${message}\n${usage}\n`);
  process.exit(2);
}

function call(
  socketPath: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const outgoing = request(
      {
        socketPath,
        method,
        path,
        headers: { 'content-type': 'application/json' },
        timeout: 150_000,
      },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          text += chunk;
        });
        response.on('end', () => resolve({ status: response.statusCode ?? 0, text }));
      },
    );
    outgoing.on('timeout', () => outgoing.destroy(new Error('the harness did not answer in time')));
    outgoing.on('error', reject);
    outgoing.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

function parse(argv: string[]) {
  let stateDir = join(repoRoot, '.fleet');
  let json = false;
  const positional: string[] = [];
  const options: Record<string, number> = {};
  for (let index = 0; index < argv.length; index++) {
    const arg = present(argv[index], `argument ${index}`);
    if (arg === '--help' || arg === '-h') {
      process.stdout.write(`${usage}\n`);
      process.exit(0);
    }
    if (arg === '--json') json = true;
    else if (arg === '--state-dir' || arg === '--latency-ms' || arg === '--loss') {
      const value = argv[++index];
      if (value === undefined) fail(`${arg} needs a value`);
      if (arg === '--state-dir') stateDir = value;
      else {
        const number = Number(value);
        if (!Number.isFinite(number)) fail(`${arg}: not a number: ${value}`);
        options[arg.slice(2)] = number;
      }
    } else if (arg.startsWith('--')) fail(`unknown flag ${arg}`);
    else positional.push(arg);
  }
  return { stateDir, json, positional, options };
}

async function main(): Promise<void> {
  const { stateDir, json, positional, options } = parse(process.argv.slice(2));
  const [command, ...rest] = positional;
  let route: [string, string, unknown?];
  if (command === 'status' && rest.length === 0) route = ['GET', '/v1/status'];
  else if (command === 'link' && rest.length === 2) {
    if (options['latency-ms'] === undefined && options.loss === undefined)
      fail('link: give --latency-ms and/or --loss');
    route = [
      'POST',
      '/v1/links',
      { a: rest[0], b: rest[1], latency_ms: options['latency-ms'], loss: options.loss },
    ];
  } else if (command === 'partition' && rest.length > 0) {
    // A name is a region code when some host has it as region; the harness checks both.
    const status = JSON.parse(
      (await call(join(stateDir, controlSocketName), 'GET', '/v1/status')).text,
    ) as { hosts: { region: string }[] };
    const regions = new Set(status.hosts.map((host) => host.region));
    route = [
      'POST',
      '/v1/partitions',
      {
        regions: rest.filter((name) => regions.has(name)),
        hosts: rest.filter((name) => !regions.has(name)),
      },
    ];
  } else if (command === 'heal' && rest.length === 0) route = ['DELETE', '/v1/partitions'];
  else if (['kill', 'pause', 'resume', 'restart'].includes(command ?? '') && rest.length === 1)
    route = ['POST', `/v1/hosts/${encodeURIComponent(present(rest[0], 'the host'))}/${command}`];
  else fail(command === undefined ? 'no command' : `bad use of ${command}`);
  const answer = await call(join(stateDir, controlSocketName), ...route);
  const readable = !json && command === 'status' && answer.status === 200;
  process.stdout.write(readable ? statusText(JSON.parse(answer.text) as WanStatus) : answer.text);
  if (answer.status >= 400) process.exit(1);
}

main().catch((error: Error) => {
  process.stderr.write(
    `fleet-wan: ${error.message} (is a fleet with --topology running on that state dir?)\n`,
  );
  process.exit(1);
});
