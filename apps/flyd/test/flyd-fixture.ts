import { chmodSync, mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CorrosionClient } from '@fleet/corrosion-client';
import { sampleImagesDir } from '@fleet/sample-images';
import { type ServerProcess, serverMain, startServerProcess, unmountUnder } from '@fleet/service';
import { present } from '@fleet/service/invariant';
import { until } from '@fleet/service/vitest-until';
import { expect, onTestFinished } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));

/** The hello image: an HTTP server on its service port. */
export const hello = {
  image: 'hello',
  services: [{ internal_port: 8080, ports: [{ port: 80, handlers: ['http'] }] }],
};

export interface CallAnswer {
  status: number;
  body: Record<string, unknown>;
}

/** The internal token of every fixture flyd (passed as FLYD_TOKEN, never on its command line). */
export const flydToken = 't';

/**
 * A real corrosion agent and a flyd data directory that successive flyd processes share. `close()`
 * stops what it started and removes the directory, also when a test failed half-way.
 */
export class FlydFixture {
  // Passable by other users (not listable): its flyd runs machines as users of their own when
  // it is root, and they reach their roots and volumes by absolute paths through it.
  readonly dir = passable(mkdtempSync(join(tmpdir(), 'fleet-crash-')));
  corrosion!: ServerProcess;
  flyd: ServerProcess | undefined;

  #client: CorrosionClient | undefined;

  /**
   * Whether its flyds stop their machines when they exit (`--stop-machines-on-exit`): on, so a
   * test leaves no machine behind; off for a test of machines outliving flyd.
   */
  stopMachinesOnExit = true;

  /** `flags` go to every flyd this fixture starts (e.g. its `--host-id`). */
  constructor(private readonly flags: string[] = []) {}

  /** Starts corrosion, then flyd; flyd's API URL. */
  async start(): Promise<string> {
    await this.startCorrosion();
    return this.startFlyd();
  }

  /** A client of this fixture's corrosion agent, closed with the fixture. */
  get corrosionClient(): CorrosionClient {
    this.#client ??= new CorrosionClient({
      url: present(this.corrosion.urls.api, 'this.corrosion.urls.api'),
    });
    return this.#client;
  }

  async startCorrosion(): Promise<void> {
    this.corrosion = await startServerProcess({
      command: process.execPath,
      args: [
        serverMain('@fleet/corrosion'),
        'agent',
        '--db',
        join(this.dir, 'c.db'),
        '--api-addr',
        '127.0.0.1:0',
      ],
      listeners: ['api'],
      env: { ...process.env, LOG_LEVEL: 'error' },
    });
  }

  /**
   * Starts flyd on the shared data directory; `extraEnv` adds e.g. FLYD_CRASH_AFTER_STEP. The
   * previous flyd must be gone (killed, stopped or crashed): two on one directory is what the
   * state lock refuses.
   */
  async startFlyd(extraEnv: Record<string, string> = {}): Promise<string> {
    const running = this.flyd?.child;
    if (running && running.exitCode === null && running.signalCode === null) {
      throw new Error(`this fixture's flyd (pid ${running.pid}) still runs: stop or kill it first`);
    }
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      LOG_LEVEL: process.env.FLYD_TEST_LOG_LEVEL ?? 'error',
      FLYD_TOKEN: flydToken,
      ...extraEnv,
    };
    if (!extraEnv.FLYD_CRASH_AFTER_STEP) delete env.FLYD_CRASH_AFTER_STEP;
    if (!extraEnv.FLYD_CRASH_BEFORE_COMMIT) delete env.FLYD_CRASH_BEFORE_COMMIT;
    this.flyd = await startServerProcess({
      command: process.execPath,
      args: [
        join(here, '..', 'dist', 'main.js'),
        '--listen',
        '127.0.0.1:0',
        '--data-dir',
        join(this.dir, 'flyd'),
        '--corrosion-url',
        present(this.corrosion.urls.api, 'this.corrosion.urls.api'),
        '--stop-timeout-ms',
        '2000',
        ...(this.stopMachinesOnExit ? ['--stop-machines-on-exit'] : []),
        ...(this.flags.includes('--images-dir') ? [] : ['--images-dir', sampleImagesDir]),
        ...this.flags,
      ],
      listeners: ['api'],
      env,
      logFile: join(this.dir, 'flyd.log'),
    });
    return present(this.flyd.urls.api, 'this.flyd.urls.api');
  }

  async kill(): Promise<void> {
    this.flyd?.child.kill('SIGKILL');
    await this.flyd?.exited;
    this.flyd = undefined;
  }

  /** Stops the running flyd, if any (SIGTERM: it stops its machines first). */
  async stopFlyd(): Promise<void> {
    await this.flyd?.stop();
    this.flyd = undefined;
  }

  /** Serves this fixture's flyds from another fixture's corrosion (two workers, one state). */
  shareCorrosion(other: FlydFixture): void {
    this.useCorrosion(other.corrosion);
  }

  /** Serves this fixture's flyds from a corrosion agent someone else started and stops. */
  useCorrosion(agent: ServerProcess): void {
    this.corrosion = agent;
    this.#ownsCorrosion = false;
  }

  #ownsCorrosion = true;

  async close(): Promise<void> {
    try {
      await this.#client?.close();
      await this.stopFlyd();
      if (this.#ownsCorrosion) await this.corrosion?.stop();
    } finally {
      // Machines a killed flyd (or one that leaves them running) left: they run in this folder.
      killProcessesUnder(this.dir);
      unmountUnder(this.dir); // and the volume disks such a flyd kept mounted
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

/**
 * `dir`, made passable by other users (not listable), as a worker's data directory is: flyd as
 * root refuses to run machines as root unasked, and machines reach their folders through it.
 */
export function passable(dir: string): string {
  chmodSync(dir, 0o711);
  return dir;
}

/** One call to flyd's API; `undefined` when the server died under it (that may be the point). */
export async function call(
  base: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<CallAnswer | undefined> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${flydToken}`,
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  }).catch(() => undefined);
  return response
    ? { status: response.status, body: (await response.json()) as Record<string, unknown> }
    : undefined;
}

/** Waits until no run is active on that flyd (a `wait` answers before its run has ended). */
export function runsIdle(base: string): Promise<true> {
  return until('the runs to end', async () => {
    const active = (await call(base, 'GET', '/v1/runs'))?.body as unknown as unknown[];
    return active?.length === 0 ? true : undefined;
  });
}

/** Polls flyd until the machine is in `state`; its view then. */
export function inState(base: string, id: string, state: string): Promise<Record<string, unknown>> {
  return until(`machine ${id} ${state}`, async () => {
    const answer = await call(base, 'GET', `/v1/machines/${id}`);
    return answer?.body.state === state ? answer.body : undefined;
  });
}

/** Creates a machine of `app` through flyd's API (it must be accepted); its id. */
export async function createMachine(
  base: string,
  app: string,
  config: Record<string, unknown>,
): Promise<string> {
  const answer = await call(base, 'POST', '/v1/machines', { app, config });
  if (answer?.status !== 200) throw new Error(`create refused: ${JSON.stringify(answer)}`);
  return answer.body.id as string;
}

/** SIGKILLs every process whose working directory is under `dir` (machines run in their roots). */
export function killProcessesUnder(dir: string): void {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/cwd`).startsWith(`${dir}/`))
        process.kill(Number(entry), 'SIGKILL');
    } catch {
      // gone meanwhile, or not ours
    }
  }
}

/**
 * Starts a second flyd beside `fixture`'s running one with `flags` (its data directory, roots)
 * and expects it to exit 1 at once naming the first one's pid: a state lock it holds. Should the
 * second start after all (the bug), it is stopped with the test, not left running.
 */
export async function expectRefusedBeside(fixture: FlydFixture, flags: string[]): Promise<void> {
  const second = startServerProcess({
    command: process.execPath,
    args: [
      join(here, '..', 'dist', 'main.js'),
      ...['--listen', '127.0.0.1:0', '--stop-machines-on-exit'],
      ...['--corrosion-url', present(fixture.corrosion.urls.api, 'the corrosion URL')],
      ...flags,
    ],
    listeners: ['api'],
    env: { ...process.env, FLYD_TOKEN: flydToken, LOG_LEVEL: 'error' },
  });
  onTestFinished(() => second.then((server) => server.stop()).catch(() => undefined));
  const firstPid = present(fixture.flyd?.child.pid, 'the first flyd pid');
  await expect(second).rejects.toThrow(new RegExp(`exited \\(1\\)[\\s\\S]*pid ${firstPid}`));
}
