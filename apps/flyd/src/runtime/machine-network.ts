import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readlinkSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import { promisify } from 'node:util';
import { UsageError } from '@fleet/service';
import { findTools } from './find-tool.js';

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
/** Addresses tried for one machine before its launch fails (each taken by another machine). */
const triesMax = 256;
/** How long a launch waits for the machine's process to have made its side of the link. */
const linkWaitMs = 5_000;

type Tool = 'ip' | 'unshare' | 'nsenter';
const tools: Tool[] = ['ip', 'unshare', 'nsenter'];

/**
 * Each machine in a network namespace of its own, as a Fly machine is a VM with its own network:
 * it listens on its services' `internal_port` (80 or 8080, whatever it likes, on any address)
 * without meeting another machine's port or the host's, and reaches nothing of the host's
 * loopback (corrosion's and flyd's APIs). Its one link is a veth pair: `eth0` in the machine,
 * `m<id>` on the host, a /32 address from 198.18.0.0/15 routed to it, the host's end
 * (`gatewayIp`) its default gateway. Nothing is forwarded: machines reach neither each other nor
 * the outside (the proxy reaches them).
 *
 * A start: flyd claims an address (`prepare`: an `unreachable` route to it, which the kernel
 * refuses to a second claimant — flyds of one host, a test's or a topology's, share its network);
 * the machine's first process, in a namespace of its own (`unshare --net`) and still root, makes
 * the pair with its host end in flyd's namespace and configures its side, says so on fd 3, and
 * waits; flyd configures the host end (`attach`), says so, and the process becomes the machine's
 * command. The link is made where each end belongs, never moved (a move waits for the kernel's
 * RCU grace period: 20 ms a start), with one `ip -batch` each side. The namespace is the
 * process's own: it ends with the machine and takes the link and its route with it, so a stop, a
 * crash or a killed flyd leaves nothing behind.
 */
export class MachineNetwork {
  private constructor(private readonly paths: Record<Tool, string>) {}

  /**
   * `auto`: a namespace per machine when this host allows it (root, iproute2 and util-linux,
   * and a veth pair made and removed as a probe), else why not. `host` asks for the shared
   * network (each machine a free loopback port as `PORT`). Anything else is a UsageError.
   */
  static async configure(setting: string): Promise<{ network: MachineNetwork } | { off: string }> {
    if (setting === 'host') return { off: '--machine-network host' };
    if (setting !== 'auto')
      throw new UsageError(
        `--machine-network must be 'auto' or 'host', not ${JSON.stringify(setting)}`,
      );
    if (process.geteuid?.() !== 0) return { off: 'flyd is not root, so it cannot make networks' };
    const found = findTools(tools);
    if ('missing' in found)
      return { off: `${found.missing} is not installed (iproute2, util-linux)` };
    const network = new MachineNetwork(found.paths);
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
    return { network };
  }

  /**
   * Claims an address for machine `id`: `preferred` (the one it had) when no machine of this
   * host holds it, else the next free one from a place its id picks (`taken`: the addresses this
   * flyd's other machines hold). Until its link is up the claim routes nowhere.
   */
  async prepare(id: string, preferred: string | null, taken: (ip: string) => boolean) {
    for (const ip of candidates(id, preferred)) {
      if (ip !== preferred && taken(ip)) continue;
      const refused = await this.#batch([`route add unreachable ${ip}/32`]);
      if (refused === undefined) return ip;
      if (!refused.exists) throw refused.error;
    }
    throw new Error(`no free machine address after ${triesMax} tries`);
  }

  /**
   * `command` run as machine `id` at address `ip`, in a network namespace of its own: every
   * port opened to the machine's own users (it listens on 80 as on Fly, not as root), the link
   * made (its host end in the namespace of flyd, `hostPid`) and its side configured — loopback,
   * `eth0` with `ip`, the gateway — then, once flyd has answered on fd 3 (`attach`), `command`.
   */
  wrap(id: string, ip: string, command: string[], hostPid = process.pid): string[] {
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
      'echo made >&3',
      'read -r _ <&3 || exit 111',
      'exec 3<&-',
      'shift 2',
      'exec "$@"',
    ].join('; ');
    return [
      this.paths.unshare,
      '--net',
      '--',
      '/bin/sh',
      '-c',
      script,
      'sh',
      inside,
      this.paths.ip,
      ...command,
    ];
  }

  /**
   * Once the machine's process (`wrap`) says on `control` (its fd 3) that its side is made,
   * configures the host end — the gateway's address, up, the claimed route to `ip` through it,
   * the machine's MAC known (no first packet waits on ARP) — and tells the process to go on.
   */
  async attach(id: string, ip: string, control: Duplex): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      let said = '';
      control.setEncoding('utf8');
      control.on('data', (chunk: string) => {
        said += chunk;
        if (said.includes('made\n')) resolve();
      });
      const failed = () => reject(new Error(`machine ${id} could not make its network link`));
      control.once('end', failed);
      control.once('error', reject);
      setTimeout(
        () => reject(new Error(`machine ${id} made no network link in time`)),
        linkWaitMs,
      ).unref();
    });
    const host = hostLink(id);
    const refused = await this.#batch([
      `addr add ${gatewayIp}/32 dev ${host}`,
      `link set ${host} up`,
      `route replace ${ip}/32 dev ${host} src ${gatewayIp}`,
      `neigh replace ${ip} lladdr ${machineMac(id)} dev ${host} nud permanent`,
    ]);
    if (refused !== undefined) throw refused.error;
    control.end('go\n');
  }

  /** Removes what a launch that failed left of machine `id`'s network: its link, its claim. */
  async discard(id: string, ip: string): Promise<void> {
    await this.#batch([`link del ${hostLink(id)}`]);
    await this.#batch([`route del unreachable ${ip}/32`]);
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

  /** Runs `commands` in one `ip -batch`; undefined, or the failure and whether "File exists". */
  async #batch(commands: string[]): Promise<{ exists: boolean; error: Error } | undefined> {
    const child = execFile(this.paths.ip, ['-batch', '-']);
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
function* candidates(id: string, preferred: string | null): Generator<string> {
  if (preferred !== null) yield preferred;
  const start = createHash('sha256').update(id).digest().readUInt32BE(0) % rangeSize;
  for (let offset = 0; offset < triesMax; offset++)
    yield ipText(rangeFirst + ((start + offset) % rangeSize));
}

function ipNumber(text: string): number {
  return text.split('.').reduce((value, part) => value * 256 + Number(part), 0);
}

function ipText(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}
