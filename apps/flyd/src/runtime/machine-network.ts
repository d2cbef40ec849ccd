import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readlinkSync } from 'node:fs';
import { promisify } from 'node:util';
import { UsageError } from '@fleet/service';
import { findTool } from './find-tool.js';

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
/** How long a launch waits for the machine's process to be in a namespace of its own. */
const unshareWaitMs = 5_000;

type Tool = 'ip' | 'unshare' | 'nsenter';
const tools: Tool[] = ['ip', 'unshare', 'nsenter'];

/**
 * Each machine in a network namespace of its own, as a Fly machine is a VM with its own network:
 * it listens on its services' `internal_port` (80 or 8080, whatever it likes, on any address)
 * without meeting another machine's port or the host's, and reaches nothing of the host's
 * loopback (corrosion's and flyd's APIs). Its one link is a veth pair: `m<id>` on the host,
 * `eth0` in the machine, a /32 address from 198.18.0.0/15 routed to it, the host's end
 * (`gatewayIp`) its default gateway. Nothing is forwarded: machines reach neither each other nor
 * the outside (the proxy reaches them).
 *
 * The namespace is the process's own (`unshare --net`), so it ends with the machine and takes the
 * link and its route with it: nothing to clean up after a stop, a crash or a killed flyd. The
 * process waits on a pipe (fd 3) until flyd has wired its link, then becomes the machine's
 * command. Several flyds of one host (the tests', a topology's) share the host's namespace: the
 * kernel's refusal of a second route to one address decides which machine has it.
 */
export class MachineNetwork {
  private constructor(private readonly paths: Record<Tool, string>) {}

  /**
   * `own` (a namespace per machine) when this host allows it: root, iproute2 and util-linux,
   * and a veth pair made and removed as a probe; else why not. `host` asks for the shared
   * network (each machine a free loopback port as `PORT`). Anything else is a UsageError.
   */
  static async configure(setting: string): Promise<{ network: MachineNetwork } | { off: string }> {
    if (setting === 'host') return { off: '--machine-network host' };
    if (setting !== 'auto')
      throw new UsageError(
        `--machine-network must be 'auto' or 'host', not ${JSON.stringify(setting)}`,
      );
    if (process.geteuid?.() !== 0) return { off: 'flyd is not root, so it cannot make networks' };
    const paths: Partial<Record<Tool, string>> = {};
    for (const tool of tools) {
      const path = findTool(tool);
      if (path === undefined) return { off: `${tool} is not installed (iproute2, util-linux)` };
      paths[tool] = path;
    }
    const network = new MachineNetwork(paths as Record<Tool, string>);
    const probe = `fleetprobe${process.pid % 10_000}`; // and its peer: 15 characters at most
    try {
      await network.#ip('link', 'add', probe, 'type', 'veth', 'peer', 'name', `${probe}p`);
    } catch (error) {
      return { off: `a machine's link could not be made here: ${(error as Error).message}` };
    } finally {
      await network.#ip('link', 'del', probe).catch(() => undefined);
    }
    return { network };
  }

  /**
   * Makes machine `id`'s link on the host and routes an address to it: `preferred` (the one it
   * had) when no other machine of this host has it, else the next free one from a place its id
   * picks. `taken` says which addresses this flyd's other machines hold. Answers the address.
   */
  async prepare(id: string, preferred: string | null, taken: (ip: string) => boolean) {
    const host = hostLink(id);
    await this.#ip('link', 'del', host).catch(() => undefined); // a launch cut short left it
    await this.#ip('link', 'add', host, 'type', 'veth', 'peer', 'name', peerLink(id));
    try {
      await this.#ip('addr', 'add', `${gatewayIp}/32`, 'dev', host);
      await this.#ip('link', 'set', host, 'up');
      for (const ip of candidates(id, preferred)) {
        if (ip !== preferred && taken(ip)) continue;
        try {
          await this.#ip('route', 'add', `${ip}/32`, 'dev', host, 'src', gatewayIp);
          return ip;
        } catch (error) {
          if (!/File exists/.test((error as { stderr?: string }).stderr ?? '')) throw error;
        }
      }
      throw new Error(`no free machine address after ${triesMax} tries`);
    } catch (error) {
      await this.discard(id);
      throw error;
    }
  }

  /** `command` run in a network namespace of its own, once flyd writes a line to its fd 3. */
  wrap(command: string[]): string[] {
    return [
      this.paths.unshare,
      '--net',
      '--',
      '/bin/sh',
      '-c',
      'read -r _ <&3 || exit 111; exec 3<&-; exec "$@"',
      'sh',
      ...command,
    ];
  }

  /**
   * Moves machine `id`'s end of its link into the namespace of its process `pid` (launched by
   * `wrap`) and configures it there: loopback up, `eth0` with `ip`, the gateway, and every port
   * open to the machine's own users (a machine listens on 80 as on Fly, not as root).
   */
  async attach(id: string, pid: number, ip: string): Promise<void> {
    const ours = readlinkSync('/proc/self/ns/net');
    const deadline = Date.now() + unshareWaitMs;
    while (readlinkSync(`/proc/${pid}/ns/net`) === ours) {
      if (Date.now() > deadline)
        throw new Error(`machine process ${pid} did not unshare its network`);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    await this.#ip('link', 'set', peerLink(id), 'netns', String(pid));
    const tool = this.paths.ip;
    const inside = [
      `${tool} link set lo up`,
      `${tool} link set ${peerLink(id)} name eth0`,
      `${tool} addr add ${ip}/32 dev eth0`,
      `${tool} link set eth0 up`,
      `${tool} route add ${gatewayIp} dev eth0`,
      `${tool} route add default via ${gatewayIp}`,
      'echo 0 > /proc/sys/net/ipv4/ip_unprivileged_port_start',
    ].join(' && ');
    await run(this.paths.nsenter, [
      '--target',
      String(pid),
      '--net',
      '--',
      '/bin/sh',
      '-c',
      inside,
    ]);
  }

  /** Removes machine `id`'s link and its route (a launch that failed half way). */
  async discard(id: string): Promise<void> {
    await this.#ip('link', 'del', hostLink(id)).catch(() => undefined);
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

  async #ip(...args: string[]): Promise<void> {
    await run(this.paths.ip, args);
  }
}

/** The host's end of machine `id`'s link (15 characters, the kernel's most). */
function hostLink(id: string): string {
  return `m${id}`;
}

/** The machine's end, on the host until attach moves it in and names it eth0. */
function peerLink(id: string): string {
  return `p${id}`;
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
