import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '@fleet/service';
import { present } from '@fleet/service/invariant';
import { askControl } from '../control/client.js';
import type { ToWatchdog } from '../handoff/messages.js';
import { Generations } from './generations.js';
import { type IncidentFacts, pruneReports, recordIncident } from './incident.js';
import { LogTail } from './log-tail.js';
import { type ProxyProcess, startProxy } from './proxy-process.js';

export interface SupervisorOptions {
  stateDir: string;
  proxyArgs: string[];
  /** The control channel silent this long (once it has answered): the proxy is wedged. */
  unansweredMs: number;
  pingIntervalMs: number;
  /** A new proxy must answer its first ping within this. */
  startTimeoutMs: number;
  /** Bound on waiting for the proxy's diagnostic report before the kill. */
  reportWaitMs: number;
  backoffMsMin: number;
  backoffMsMax: number;
  /** A proxy answering this long resets the backoff. */
  stableMs: number;
  /** On stop: SIGTERM, then SIGKILL after this long. */
  stopGraceMs: number;
  logTailLines: number;
  /** Added to every proxy's environment (the shared TLS ticket keys file). */
  env: Record<string, string>;
  logger: Logger;
}

/** What every Fleet server exits with on a usage error (see @fleet/service's runMain). */
const usageExitCode = 2;

export type SupervisorState = 'starting' | 'running' | 'unanswered' | 'backoff' | 'stopped';

export interface SupervisorStatus {
  state: SupervisorState;
  proxyPid: number | null;
  proxyStartedAt: string | null;
  restarts: number;
  restartsByReason: Record<IncidentFacts['reason'], number>;
  lastAnswerAt: string | null;
  lastIncident: string | null;
  nextBackoffMs: number;
  /** Restarts without dropping (SIGHUP, `proxyctl restart`) completed. */
  handoffs: number;
  /** Earlier generations still draining their connections. */
  drainingPids: number[];
}

/**
 * Runs fly-proxy and keeps it answering (seed 001/002): pings its control channel with `locks`
 * every `pingIntervalMs` (keeping the last snapshot), and when it has not answered for
 * `unansweredMs` asks for a Node diagnostic report (SIGUSR2, and SIGCONT in case it was stopped),
 * records the incident, kills it (SIGKILL) and starts a new one after an exponential backoff. A
 * proxy that exits by itself is restarted the same way.
 */
export class Supervisor {
  readonly #options: SupervisorOptions;
  readonly #generations: Generations;
  readonly #reportDir: string;
  readonly #tail: LogTail;
  #proxy: ProxyProcess | undefined;
  /** The proxy being given up on: its exit is expected, its late answers ignored. */
  #abandoned: ProxyProcess | undefined;
  #state: SupervisorState = 'starting';
  #pingTimer: NodeJS.Timeout | undefined;
  #deadlineTimer: NodeJS.Timeout | undefined;
  #restartTimer: NodeJS.Timeout | undefined;
  #pinging = false;
  #lastAnswerMs = 0;
  #answeringSinceMs = 0;
  #locks: unknown = null;
  #locksAt: string | null = null;
  #consecutive = 0;
  #restarts = { unanswered: 0, exited: 0 };
  #lastIncident: string | null = null;
  #proxyStartedAt: string | null = null;
  /** The proxy's successor while a handoff waits for it to be ready. */
  #successor: ProxyProcess | undefined;
  #handoffs = 0;

  /** Called whenever the status changes (the status file is rewritten). */
  onChange: () => void = () => undefined;
  /**
   * Called instead of a restart when the proxy refused its command line (exit status 2, before
   * ever answering): no restart can fix a flag, so the watchdog stops with the proxy's message.
   */
  onUsageError: () => void = () => undefined;

  constructor(options: SupervisorOptions) {
    this.#options = options;
    this.#generations = new Generations(options.stateDir, options.stopGraceMs, options.logger);
    this.#reportDir = join(options.stateDir, 'reports');
    this.#tail = new LogTail(options.logTailLines);
  }

  status(): SupervisorStatus {
    return {
      state: this.#state,
      proxyPid: this.#proxy?.pid ?? null,
      proxyStartedAt: this.#proxyStartedAt,
      restarts: this.#restarts.unanswered + this.#restarts.exited,
      restartsByReason: { ...this.#restarts },
      lastAnswerAt: this.#lastAnswerMs === 0 ? null : new Date(this.#lastAnswerMs).toISOString(),
      lastIncident: this.#lastIncident,
      nextBackoffMs: this.#backoffMs(),
      handoffs: this.#handoffs,
      drainingPids: this.#generations.drainingPids(),
    };
  }

  start(): void {
    mkdirSync(this.#reportDir, { recursive: true }); // Node writes no report into a missing directory
    pruneReports(this.#reportDir);
    this.#generations.pruneStaleSockets();
    this.#adopt(this.#spawn());
  }

  /**
   * Restart without dropping (SIGHUP, `proxyctl restart`): starts the next generation on the same
   * listening sockets, waits until it says it is ready (every listener bound, control channel
   * up), publishes its control socket, and only then tells the current one to drain. A successor
   * that fails to become ready is killed and the current proxy keeps serving. False when refused
   * (no proxy running, a handoff already under way) or failed.
   */
  async handoff(reason: string): Promise<boolean> {
    const old = this.#proxy;
    const { logger } = this.#options;
    if (this.#state !== 'running' || old === undefined || this.#successor !== undefined) {
      logger.warn(
        { event: 'handoff_refused', reason, state: this.#state, handingOff: !!this.#successor },
        'restart refused: no proxy running, or a handoff under way',
      );
      return false;
    }
    logger.info({ event: 'handoff_started', reason, pid: old.pid }, 'starting the next proxy');
    const next = this.#spawn();
    this.#successor = next;
    const ready = await this.#generations.ready(next, this.#options.startTimeoutMs);
    this.#successor = undefined;
    // Re-checked after the wait: the watchdog may be stopping, or the old proxy given up on.
    const stopped = (this.#state as SupervisorState) === 'stopped';
    if (!ready || stopped || this.#proxy !== old || this.#abandoned === old) {
      logger.error(
        { event: 'handoff_failed', reason, pid: next.pid, ready },
        'the next proxy did not become ready: the current one keeps serving',
      );
      next.child.kill('SIGKILL');
      await next.exited;
      return false;
    }
    this.#clearTimers();
    this.#adopt(next, true);
    this.#generations.publish(next);
    this.#generations.retire(old, reason);
    this.#handoffs += 1;
    logger.info(
      { event: 'handoff_done', reason, pid: next.pid, draining: old.pid },
      'the next proxy serves; the previous one drains',
    );
    this.onChange();
    return true;
  }

  #spawn(): ProxyProcess {
    const proxy = startProxy({
      args: this.#options.proxyArgs,
      stateDir: this.#options.stateDir,
      reportDir: this.#reportDir,
      tail: this.#tail,
      env: this.#options.env,
    });
    this.#generations.track(proxy);
    void proxy.exited.then(() => this.onChange()); // drainingPids changed, say
    proxy.onMessage((message) => this.#message(proxy, message));
    return proxy;
  }

  #message(proxy: ProxyProcess, message: ToWatchdog): void {
    if (message.type === 'fleet:restart' && proxy === this.#proxy)
      void this.handoff(message.reason);
    else if (message.type === 'fleet:draining')
      this.#generations.draining(proxy, message.deadlineMs);
  }

  /** Makes `proxy` the supervised one: pinged, restarted when it stops answering or exits. */
  #adopt(proxy: ProxyProcess, ready = false): void {
    this.#proxy = proxy;
    this.#proxyStartedAt = new Date().toISOString();
    this.#answeringSinceMs = 0;
    // A snapshot is evidence about the proxy that answered it, never about its successor.
    this.#locks = null;
    this.#locksAt = null;
    // A successor that said it is ready serves at once (another restart may follow at once).
    this.#setState(ready ? 'running' : 'starting');
    this.#options.logger.info({ event: 'proxy_started', pid: proxy.pid }, 'proxy started');
    this.#armDeadline(ready ? this.#options.unansweredMs : this.#options.startTimeoutMs);
    this.#pingTimer = setInterval(() => void this.#ping(proxy), this.#options.pingIntervalMs);
    void proxy.exited.then((exit) => {
      if (this.#proxy !== proxy || this.#abandoned === proxy || this.#state === 'stopped') return;
      if (exit.code === usageExitCode && this.#state === 'starting') {
        this.#clearTimers();
        this.#options.logger.fatal(
          { event: 'proxy_usage_error', pid: proxy.pid },
          'the proxy refused its flags: not restarting it',
        );
        this.onUsageError();
        return;
      }
      void this.#giveUp(proxy, 'exited', exit);
    });
  }

  /**
   * Stops every proxy it started — the current one, a successor not yet ready, earlier ones
   * still draining (SIGTERM, SIGKILL past the grace) — and supervises no more.
   */
  async stop(): Promise<void> {
    this.#setState('stopped');
    this.#clearTimers();
    clearTimeout(this.#restartTimer);
    await this.#generations.stopAll();
  }

  /** Tells every running generation (the ticket keys were rotated). */
  broadcast(message: Parameters<ProxyProcess['send']>[0]): void {
    this.#generations.broadcast(message);
  }

  async #ping(proxy: ProxyProcess): Promise<void> {
    if (this.#pinging) return;
    this.#pinging = true;
    try {
      const answer = await askControl(
        this.#generations.socketOf(proxy),
        { command: 'locks', args: [] },
        this.#options.pingIntervalMs,
      );
      if (this.#proxy !== proxy || this.#abandoned === proxy || this.#state === 'stopped') return;
      const now = Date.now();
      this.#lastAnswerMs = now;
      if (answer.ok) {
        this.#locks = answer.result;
        this.#locksAt = new Date(now).toISOString();
      }
      if (this.#answeringSinceMs === 0) {
        this.#answeringSinceMs = now;
        this.#generations.publish(proxy); // its socket answers: proxyctl finds it as control.sock
      }
      if (now - this.#answeringSinceMs >= this.#options.stableMs) this.#consecutive = 0;
      this.#armDeadline(this.#options.unansweredMs);
      if (this.#state !== 'running') this.#setState('running');
    } catch {
      // No answer: the deadline decides, not one missed ping.
    } finally {
      this.#pinging = false;
    }
  }

  #armDeadline(ms: number): void {
    clearTimeout(this.#deadlineTimer);
    const proxy = present(this.#proxy, 'the proxy whose deadline is armed');
    this.#deadlineTimer = setTimeout(() => void this.#giveUp(proxy, 'unanswered'), ms);
  }

  /** Records what is known, kills the proxy if it still runs, and schedules the next one. */
  async #giveUp(
    proxy: ProxyProcess,
    reason: IncidentFacts['reason'],
    exit?: { code: number | null; signal: NodeJS.Signals | null },
  ): Promise<void> {
    if (this.#abandoned === proxy || this.#state === 'stopped') return;
    this.#abandoned = proxy;
    this.#clearTimers();
    this.#successor?.child.kill('SIGKILL'); // a handoff in flight: start afresh after the backoff
    this.#restarts[reason]++;
    // Silent since its last answer, or since it started when it never answered.
    const silentMs =
      Date.now() -
      (this.#lastAnswerMs || Date.parse(present(this.#proxyStartedAt, "the proxy's start time")));
    this.#options.logger.error(
      { event: 'proxy_restart', reason, pid: proxy.pid, silentMs, exit },
      reason === 'unanswered'
        ? 'proxy stopped answering: restarting it'
        : 'proxy exited: restarting it',
    );
    this.#setState(reason === 'unanswered' ? 'unanswered' : 'backoff');
    const asked = reason === 'unanswered';
    if (asked) {
      proxy.child.kill('SIGUSR2'); // Node's diagnostic report (--report-on-signal)
      proxy.child.kill('SIGCONT'); // a stopped process handles signals only once continued
    }
    try {
      this.#lastIncident = await recordIncident({
        stateDir: this.#options.stateDir,
        reportDir: this.#reportDir,
        reportWaitMs: asked ? this.#options.reportWaitMs : 0,
        logTail: this.#tail.text(),
        facts: {
          reason,
          pid: proxy.pid,
          at: new Date().toISOString(),
          ...(asked
            ? { silentMs }
            : { exit: { code: exit?.code ?? null, signal: exit?.signal ?? null } }),
          locks: this.#locks,
          locksAt: this.#locksAt,
          restarts: this.#restarts.unanswered + this.#restarts.exited,
        },
      });
    } catch (error) {
      this.#options.logger.error({ err: error }, 'cannot record the incident');
    } finally {
      proxy.child.kill('SIGKILL');
      await proxy.exited;
    }
    this.#scheduleRestart();
  }

  #scheduleRestart(): void {
    if (this.#state === 'stopped') return;
    const delayMs = this.#backoffMs();
    this.#consecutive++;
    this.#lastAnswerMs = 0;
    this.#setState('backoff');
    this.#restartTimer = setTimeout(() => this.start(), delayMs);
  }

  /** 0 for the first restart after a stable run, then min, 2×min, … up to max. */
  #backoffMs(): number {
    if (this.#consecutive === 0) return 0;
    const { backoffMsMin, backoffMsMax } = this.#options;
    return Math.min(backoffMsMax, backoffMsMin * 2 ** Math.min(this.#consecutive - 1, 30));
  }

  #clearTimers(): void {
    clearInterval(this.#pingTimer);
    clearTimeout(this.#deadlineTimer);
  }

  #setState(state: SupervisorState): void {
    this.#state = state;
    this.onChange();
  }
}
