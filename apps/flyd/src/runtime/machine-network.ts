import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { UsageError } from '@fleet/service';
import { findTools } from './find-tool.js';
import { handshakeLines, heldCommand } from './launch-handshake.js';

const run = promisify(execFile);

/** The host's end of every machine's link: each machine's gateway. */
export const gatewayIp = '198.18.0.1';
/**
 * Machines' addresses: RFC 2544's benchmarking range (198.18.0.0/15), which no real network
 * routes, so a machine's /32 route never hides a LAN's, a VPN's (Tailscale's 100.64/10) or a
 * container bridge's (Docker's 172.17/16).
 */
const rangeFirst = ipNumber('198.18.0.2');
const rangeSize = 2 ** 17 - 3; // to 198.19.255.254
/** How long a machine's own address is waited for while its last namespace ends. */
const ownAddressWaitMs = 1_000;
/** Beside a namespace's file in `dir`: the address a launch claimed, until its link is up. */
const claimSuffix = '.claim';
/** Addresses tried for one machine before its launch fails (each taken by another machine). */
const triesMax = 256;

type Tool = 'ip' | 'unshare' | 'nsenter' | 'umount';
const tools: Tool[] = ['ip', 'unshare', 'nsenter', 'umount'];

/**
 * Each machine in a network namespace of its own, as a Fly machine is a VM with its own network:
 * it listens on its services' `internal_port` (80 or 8080, whatever it likes, on any address)
 * without meeting another machine's port or the host's, and reaches nothing of the host's
 * loopback (corrosion's and flyd's APIs). Its one link is a veth pair: `eth0` in the machine,
 * `m<id>` on the host, a /32 address from 198.18.0.0/15 routed to it, the host's end
 * (`gatewayIp`) its default gateway. Nothing is forwarded: machines reach neither each other nor
 * the outside (the proxy reaches them).
 *
 * A first start: flyd claims an address (`prepare`: an `unreachable` route to it, which the
 * kernel refuses to a second claimant — flyds of one host, a test's or a topology's, share its
 * network); the machine's first process, in a namespace of its own (`unshare --net=<file>`, bound
 * to a file of `dir`) and still root, makes the pair with its host end in flyd's namespace and
 * configures its side, then says so (launch-handshake.ts); flyd configures the host end
 * (`attach`) and lets it run the machine's command. The link is made where each end belongs,
 * never moved (a move waits for the kernel's RCU grace period: 20 ms a start), with one
 * `ip -batch` each side.
 *
 * The namespace outlives the machine's process through its file, so a stopped machine keeps its
 * address, as on Fly, and its next start only enters it (`nsenter`): no address claimed, no
 * namespace, link or route made (about 20 ms a start). Up to `idleMax` stopped machines keep theirs
 * (about 200 KB of kernel memory each), the longest stopped dropped first; a destroyed machine's
 * goes at once, and every one when flyd exits (a running machine's lives on with its process).
 * Dropping one frees its link and route with it, as the kernel ends the namespace.
 */
export class MachineNetwork {
  /** The kept network of each machine that has one, by id: its address. */
  readonly #kept = new Map<string, string>();
  /** Kept networks of stopped machines, the longest stopped first. */
  readonly #idle = new Set<string>();
  /** Networks being dropped: a start of the machine waits for it (the file is reused). */
  readonly #dropping = new Map<string, Promise<void>>();

  private constructor(
    private readonly paths: Record<Tool, string>,
    private readonly dir: string,
    private readonly idleMax: number,
  ) {}

  /**
   * `auto`: a namespace per machine when this host allows it (root, iproute2 and util-linux,
   * and a veth pair made and removed as a probe), else why not. `host` asks for the shared
   * network (each machine a free loopback port as `PORT`). Anything else is a UsageError.
   */
  static async configure(
    setting: string,
    dir: string,
    idleMax: number,
  ): Promise<{ network: MachineNetwork } | { off: string }> {
    if (setting === 'host') return { off: '--machine-network host' };
    if (setting !== 'auto')
      throw new UsageError(
        `--machine-network must be 'auto' or 'host', not ${JSON.stringify(setting)}`,
      );
    if (process.geteuid?.() !== 0) return { off: 'flyd is not root, so it cannot make networks' };
    const found = findTools(tools);
    if ('missing' in found)
      return { off: `${found.missing} is not installed (iproute2, util-linux)` };
    const network = new MachineNetwork(found.paths, dir, idleMax);
    const probe = `fleetprobe${process.pid % 10_000}`; // and its peer: 15 characters at most
    try {
      await run(network.paths.ip, [
        'link',
        'add',
        probe,
        'type',
        'veth',
        'peer',
        'name',
        `${probe}p`,
      ]);
    } catch (error) {
      return { off: `a machine's link could not be made here: ${(error as Error).message}` };
    } finally {
      await run(network.paths.ip, ['link', 'del', probe]).catch(() => undefined);
    }
    await network.#sweep();
    return { network };
  }

  /**
   * Drops the networks a killed flyd kept (their files in `dir`): this one knows none of them; and
   * the claims it made for launches it did not see to their link (`<id>.claim`): their
   * `unreachable` routes would keep those addresses from every machine for good.
   */
  async #sweep(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    for (const name of readdirSync(this.dir)) {
      if (!name.endsWith(claimSuffix)) await this.#unbind(name);
      else await this.#unclaim(name.slice(0, -claimSuffix.length));
    }
  }

  /**
   * The address of machine `id` for its start: that of the network it kept, else a claimed one:
   * `preferred` (the one it had) when no machine of this host holds it, else the next free one
   * from a place its id picks (`taken`: the addresses this flyd's other machines hold), never one
   * of the host's own. Until its link is up a claim routes nowhere.
   */
  async prepare(id: string, preferred: string | null, taken: (ip: string) => boolean) {
    await this.#dropping.get(id);
    this.#idle.delete(id);
    const kept = this.#kept.get(id);
    // Its host link gone (deleted by hand) the kept network reaches nothing: a fresh one.
    if (kept !== undefined && existsSync(`/sys/class/net/${hostLink(id)}`)) return kept;
    if (kept !== undefined) await this.#drop(id);
    // An address of the host itself (a topology's hosts have theirs in this range) would be
    // delivered to the host, never to the machine.
    const own = localAddresses();
    for (const ip of candidates(id, preferred)) {
      if (own.has(ip) || taken(ip)) continue;
      // Its own address may still be routed to its last namespace, which the kernel ends in the
      // background: tried for a moment before another is taken.
      if (await this.#claim(id, ip, ip === preferred ? ownAddressWaitMs : 0)) return ip;
    }
    throw new Error(`no free machine address after ${triesMax} tries`);
  }

  /**
   * Claims `ip` for machine `id` with an `unreachable` route; false when it is routed already
   * (past `waitMs`). Noted first in `<id>.claim`, so that a flyd killed before the link replaces
   * the route has its successor remove it (`#sweep`).
   */
  async #claim(id: string, ip: string, waitMs: number): Promise<boolean> {
    writeFileSync(this.#claimFile(id), ip);
    const deadline = Date.now() + waitMs;
    for (;;) {
      const refused = await this.#batch([`route add unreachable ${ip}/32`]);
      if (refused === undefined) return true;
      if (!refused.exists || Date.now() >= deadline) {
        rmSync(this.#claimFile(id), { force: true });
        if (!refused.exists) throw refused.error;
        return false;
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Removes the claim noted in `<id>.claim`, if its route is still the claim's; never fails. */
  async #unclaim(id: string): Promise<void> {
    let ip: string;
    try {
      ip = readFileSync(this.#claimFile(id), 'utf8');
    } catch {
      return;
    }
    // Only an `unreachable` route goes: a link's route to the address is the machine's own.
    if (isIP(ip) === 4) await this.#batch([`route del unreachable ${ip}/32`]);
    rmSync(this.#claimFile(id), { force: true });
  }

  /**
   * `command` run as machine `id` at address `ip`, in `dir` (its root, made by flyd meanwhile),
   * once flyd has answered on fd 3 (`attach`). In the network it kept (`prepare`), or in a new
   * namespace bound to its file: every port opened to the machine's own users (it listens on 80
   * as on Fly, not as root), the link made (its host end in the namespace of flyd, `hostPid`) and
   * its side configured — loopback, `eth0` with `ip`, the gateway.
   */
  wrap(id: string, ip: string, dir: string, command: string[], hostPid = process.pid): string[] {
    const file = this.#file(id);
    if (this.#kept.has(id))
      return [this.paths.nsenter, `--net=${file}`, '--', ...heldCommand(dir, command)];
    writeFileSync(file, ''); // where unshare binds the namespace
    const inside = [
      `link add eth0 address ${machineMac(id)} type veth peer name ${hostLink(id)} netns ${hostPid}`,
      'link set lo up',
      `addr add ${ip}/32 dev eth0`,
      'link set eth0 up',
      `route add ${gatewayIp} dev eth0`,
      `route add default via ${gatewayIp}`,
    ].join('\n');
    const script = [
      'echo 0 > /proc/sys/net/ipv4/ip_unprivileged_port_start || exit 112',
      'printf \'%s\\n\' "$1" | "$2" -batch - || exit 113',
      'shift 2',
      ...handshakeLines,
    ].join('; ');
    return [
      this.paths.unshare,
      `--net=${file}`,
      '--',
      '/bin/sh',
      '-c',
      script,
      'sh',
      inside,
      this.paths.ip,
      dir,
      ...command,
    ];
  }

  /**
   * Configures the host end of machine `id`'s new link once its first process (`wrap`) made it
   * and said so: the gateway's address, up, the claimed route to `ip` through it, the machine's
   * MAC known (no first packet waits on ARP). A network the machine kept needs nothing.
   */
  async attach(id: string, ip: string): Promise<void> {
    if (this.#kept.has(id)) return;
    const host = hostLink(id);
    const refused = await this.#batch([
      `addr add ${gatewayIp}/32 dev ${host}`,
      `link set ${host} up`,
      `route replace ${ip}/32 dev ${host} src ${gatewayIp}`,
      `neigh replace ${ip} lladdr ${machineMac(id)} dev ${host} nud permanent`,
    ]);
    if (refused !== undefined) throw refused.error;
    rmSync(this.#claimFile(id), { force: true }); // the route is the link's now
    this.#kept.set(id, ip);
  }

  /**
   * Machine `id`'s launch failed: what its network was is removed (a kept one too: it may be
   * why), and the next start makes a new one. Of a new one: its bound namespace, link and claim.
   */
  async discard(id: string, ip: string): Promise<void> {
    if (this.#kept.has(id)) return this.#drop(id);
    await this.#unbind(id);
    await this.#batch([`link del ${hostLink(id)}`, `route del unreachable ${ip}/32`], true);
    rmSync(this.#claimFile(id), { force: true });
  }

  /** Machine `id` stopped: its network is kept for its next start, the longest idle dropped past the bound. */
  stopped(id: string): void {
    if (!this.#kept.has(id)) return;
    this.#idle.add(id);
    for (const oldest of this.#idle) {
      if (this.#idle.size <= this.idleMax) break;
      void this.#drop(oldest);
    }
  }

  /** Machine `id` is gone from this worker (destroyed, migrated away): its network goes too. */
  release(id: string): Promise<void> {
    return this.#drop(id);
  }

  /** flyd exits: every kept network is dropped (a running machine's lives on with its process). */
  async releaseAll(): Promise<void> {
    await Promise.all([...this.#kept.keys()].map((id) => this.#drop(id)));
  }

  #drop(id: string): Promise<void> {
    const pending = this.#dropping.get(id);
    if (pending) return pending;
    if (!this.#kept.delete(id)) return Promise.resolve();
    this.#idle.delete(id);
    const dropping = this.#unbind(id).finally(() => this.#dropping.delete(id));
    this.#dropping.set(id, dropping);
    return dropping;
  }

  /**
   * Unbinds machine `id`'s namespace from its file and removes the file; the namespace ends with
   * its last process. Never fails: what is left is swept at flyd's next start.
   */
  async #unbind(id: string): Promise<void> {
    await this.#unmount(this.#file(id));
    try {
      rmSync(this.#file(id), { force: true });
    } catch {
      // still mounted: swept at the next start
    }
  }

  /** Unmounts `path` if it is mounted (a kept namespace's bind), lazily if it is busy. */
  async #unmount(path: string): Promise<void> {
    await run(this.paths.umount, [path]).catch(() =>
      run(this.paths.umount, ['-l', path]).catch(() => undefined),
    );
  }

  #file(id: string): string {
    return join(this.dir, id);
  }

  #claimFile(id: string): string {
    return join(this.dir, `${id}${claimSuffix}`);
  }

  /** Whether process `pid` is in a network namespace other than flyd's. */
  ownsNetwork(pid: number): boolean {
    try {
      return readlinkSync(`/proc/${pid}/ns/net`) !== readlinkSync('/proc/self/ns/net');
    } catch {
      return false; // gone
    }
  }

  /** `command` run in the network of the machine whose process is `pid` (exec). */
  enter(pid: number, command: string[]): string[] {
    return [this.paths.nsenter, '--target', String(pid), '--net', '--', ...command];
  }

  /**
   * Runs `commands` in one `ip -batch` (with `force`, each whatever the one before did);
   * undefined, or the failure and whether "File exists".
   */
  async #batch(
    commands: string[],
    force = false,
  ): Promise<{ exists: boolean; error: Error } | undefined> {
    const child = execFile(this.paths.ip, [...(force ? ['-force'] : []), '-batch', '-']);
    child.stdin?.end(`${commands.join('\n')}\n`);
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', resolve);
    });
    if (code === 0) return undefined;
    return { exists: /File exists/.test(stderr), error: new Error(`ip: ${stderr.trim()}`) };
  }
}

/** The host's end of machine `id`'s link (15 characters, the kernel's most). */
function hostLink(id: string): string {
  return `m${id}`;
}

/** The machine end's MAC: locally administered, unicast, from its id (each link is its own). */
function machineMac(id: string): string {
  return `02:${(id.slice(0, 10).match(/../g) ?? []).join(':')}`;
}

/** The preferred address, then addresses from a place in the range the machine's id picks. */
export function* candidates(id: string, preferred: string | null): Generator<string> {
  if (preferred !== null) yield preferred;
  const start = createHash('sha256').update(id).digest().readUInt32BE(0) % rangeSize;
  for (let offset = 0; offset < triesMax; offset++)
    yield ipText(rangeFirst + ((start + offset) % rangeSize));
}

/**
 * Every address of flyd's network namespace, of links up or down (Node's `networkInterfaces`
 * skips links that are down, whose addresses are still the host's): the kernel's local routes.
 */
function localAddresses(): Set<string> {
  const lines = readFileSync('/proc/net/fib_trie', 'utf8').split('\n');
  const found = new Set<string>();
  lines.forEach((line, at) => {
    const address = /([\d.]+)\s*$/.exec(lines[at - 1] ?? '')?.[1];
    if (line.includes('/32 host LOCAL') && address !== undefined) found.add(address);
  });
  return found;
}

function ipNumber(text: string): number {
  return text.split('.').reduce((value, part) => value * 256 + Number(part), 0);
}

function ipText(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}
