import { linkSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '@fleet/service';
import { controlSocketName } from '../control/protocol.js';
import { generationSocketName, type ToGeneration } from '../handoff/messages.js';
import type { ProxyProcess } from './proxy-process.js';

/**
 * Every proxy process the watchdog started and that has not exited yet: the serving one, a
 * successor starting during a handoff, earlier ones draining. Each has its own control socket
 * (`generation-<pid>.sock`); the serving one's is published as `control.sock` (a hard link,
 * renamed into place: proxyctl always reaches the serving generation, never a draining one).
 */
export class Generations {
  readonly #running = new Set<ProxyProcess>();
  readonly #draining = new Map<ProxyProcess, NodeJS.Timeout>();
  #published: ProxyProcess | undefined;

  constructor(
    private readonly stateDir: string,
    private readonly stopGraceMs: number,
    private readonly logger: Logger,
  ) {}

  track(proxy: ProxyProcess): void {
    this.#running.add(proxy);
    void proxy.exited.then(() => {
      this.#running.delete(proxy);
      clearTimeout(this.#draining.get(proxy));
      this.#draining.delete(proxy);
    });
  }

  /**
   * Removes the sockets of generations that are gone without removing theirs (killed: a wedged
   * proxy, a kill -9); a socket of a live process is left alone.
   */
  pruneStaleSockets(): void {
    for (const name of readdirSync(this.stateDir)) {
      const pid = /^generation-(\d+)\.sock$/.exec(name)?.[1];
      if (pid !== undefined && !isAlive(Number(pid)))
        rmSync(join(this.stateDir, name), { force: true });
    }
  }

  socketOf(proxy: ProxyProcess): string {
    return join(this.stateDir, generationSocketName(proxy.pid));
  }

  drainingPids(): number[] {
    return [...this.#draining.keys()].map((proxy) => proxy.pid);
  }

  /** True once `proxy` says it is ready; false when it exits first or `timeoutMs` passes. */
  ready(proxy: ProxyProcess, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      proxy.onMessage((message) => {
        if (message.type !== 'fleet:ready') return;
        clearTimeout(timer);
        resolve(true);
      });
      void proxy.exited.then(() => {
        clearTimeout(timer);
        resolve(false);
      });
    });
  }

  /** Makes `control.sock` the socket of `proxy` (atomically: link aside, rename over). */
  publish(proxy: ProxyProcess): void {
    if (this.#published === proxy) return;
    const target = join(this.stateDir, controlSocketName);
    const aside = `${target}.${process.pid}.tmp`;
    try {
      rmSync(aside, { force: true });
      linkSync(this.socketOf(proxy), aside);
      renameSync(aside, target);
      this.#published = proxy;
    } catch (error) {
      this.logger.warn({ err: error, pid: proxy.pid }, 'cannot publish the control socket');
    }
  }

  /**
   * Tells `proxy` to drain. It answers with its drain deadline; past that plus the stop grace
   * (or past the grace, when it never answers: wedged) it is killed.
   */
  retire(proxy: ProxyProcess, reason: string): void {
    if (!proxy.send({ type: 'fleet:drain', reason })) {
      proxy.child.kill('SIGKILL');
      return;
    }
    this.#killAfter(proxy, this.stopGraceMs);
  }

  /** The retired proxy started draining, with this deadline. */
  draining(proxy: ProxyProcess, deadlineMs: number): void {
    if (this.#draining.has(proxy)) this.#killAfter(proxy, deadlineMs + this.stopGraceMs);
  }

  broadcast(message: ToGeneration): void {
    for (const proxy of this.#running) proxy.send(message);
  }

  /** SIGTERM to every proxy still running (SIGKILL past the grace); resolves when all exited. */
  async stopAll(): Promise<void> {
    const running = [...this.#running];
    for (const proxy of running) {
      proxy.child.kill('SIGTERM');
      proxy.child.kill('SIGCONT'); // a stopped proxy cannot act on SIGTERM
    }
    const grace = setTimeout(() => {
      for (const proxy of running) proxy.child.kill('SIGKILL');
    }, this.stopGraceMs);
    await Promise.all(running.map((proxy) => proxy.exited));
    clearTimeout(grace);
    this.#unpublish();
  }

  #killAfter(proxy: ProxyProcess, ms: number): void {
    clearTimeout(this.#draining.get(proxy));
    const timer = setTimeout(() => {
      this.logger.warn({ event: 'drain_overran', pid: proxy.pid }, 'a draining proxy overran');
      proxy.child.kill('SIGKILL');
    }, ms);
    this.#draining.set(proxy, timer);
  }

  /** Removes the published `control.sock` (every generation is gone: nothing answers on it). */
  #unpublish(): void {
    if (this.#published === undefined) return;
    rmSync(join(this.stateDir, controlSocketName), { force: true });
    this.#published = undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
