import type { FlapsClient, Machine } from '@fleet/flaps-client';
import { request } from 'undici';

export interface DemoOptions {
  app: string;
  machineCount: number;
  region: string;
  image: string;
}

/** The machine config of the demo app: the `hello` image serving HTTP on port 8080. */
export function demoMachineConfig(image: string): Record<string, unknown> {
  return {
    image,
    services: [
      {
        protocol: 'tcp',
        internal_port: 8080,
        ports: [{ port: 80, handlers: ['http'] }],
      },
    ],
    restart: { policy: 'on-failure' },
  };
}

/**
 * Makes sure the demo app exists with `machineCount` started machines of `image`, through the
 * Machines API as a user would: it keeps what a previous run left (updating one whose image is
 * not this checkout's `hello`, starting a stopped one) and creates the rest.
 */
export async function ensureDemoApp(flaps: FlapsClient, options: DemoOptions): Promise<Machine[]> {
  if ((await flaps.getApp(options.app)) === undefined) await flaps.createApp(options.app);
  const existing = (await flaps.listMachines(options.app)).filter(
    (machine) => machine.state !== 'destroyed' && machine.state !== 'destroying',
  );
  const kept = existing.slice(0, options.machineCount);
  for (const machine of kept) {
    // A checkout pulled since the last run has a new `hello`: its machines run that one.
    if ((machine.config as { image?: string } | undefined)?.image !== options.image)
      await flaps.updateMachine(options.app, machine.id, {
        region: options.region,
        config: demoMachineConfig(options.image),
      });
    if (machine.state !== 'started') await flaps.startMachine(options.app, machine.id);
  }
  const created: Machine[] = [];
  for (let index = kept.length; index < options.machineCount; index++) {
    created.push(
      await flaps.createMachine(options.app, {
        region: options.region,
        config: demoMachineConfig(options.image),
      }),
    );
  }
  const machines = [...kept, ...created];
  for (const machine of machines) await flaps.waitMachine(options.app, machine.id, 'started');
  return machines;
}

/** What the proxy answered for one request. */
export interface ProxyAnswer {
  status: number;
  body: string;
}

/** One GET through the proxy with `Host: <host>`, bounded by `timeoutMs`. */
export async function getThroughProxy(
  proxyUrl: string,
  host: string,
  timeoutMs = 5_000,
): Promise<ProxyAnswer> {
  const response = await request(proxyUrl, {
    headers: { host },
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  return { status: response.statusCode, body: await response.body.text() };
}

/**
 * Polls the proxy until `accept` likes its answer (the catalog learns of changes through a
 * corrosion subscription, so a change shows up a moment later); throws with the last answer
 * after `timeoutMs`.
 */
export async function waitForProxy(
  proxyUrl: string,
  host: string,
  accept: (answer: ProxyAnswer) => boolean,
  timeoutMs = 15_000,
): Promise<ProxyAnswer> {
  const deadline = Date.now() + timeoutMs;
  let last: ProxyAnswer | Error = new Error('no request made');
  while (Date.now() < deadline) {
    try {
      last = await getThroughProxy(proxyUrl, host);
      if (accept(last)) return last;
    } catch (error) {
      last = error as Error;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const shown = last instanceof Error ? last.message : `${last.status} ${last.body}`;
  throw new Error(`proxy never gave the expected answer for ${host}; last: ${shown}`);
}
