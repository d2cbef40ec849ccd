import { statSync } from 'node:fs';
import { join } from 'node:path';
import { createLogger } from '@fleet/service';
import { present } from '@fleet/service/invariant';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { swimConfig } from '../src/swim/config.js';
import { Membership } from '../src/swim/membership.js';
import { Channel, decodeFrame, encodeFrame } from '../src/transport/frame.js';
import { UdpTransport } from '../src/transport/udp.js';
import { tempDir } from './agent.js';
import { eventually } from './cluster.js';

const logger = createLogger('swim-test');
logger.level = 'silent';
const key = Buffer.from('swim-test-key-0123456789');

interface Peer {
  transport: UdpTransport;
  membership: Membership;
  statePath: string;
  actorId: string;
}

const peers: Peer[] = [];

/** The member at `index`, which the test made. */
function nth<T>(list: T[], index: number): T {
  return present(list[index], `member ${index}`);
}

afterEach(async () => {
  for (const peer of peers.splice(0)) {
    await peer.membership.stop();
    peer.transport.close();
  }
});

/** A SWIM member on its own UDP socket, probing every 50 ms. */
async function peer(
  bootstrap: string[],
  options: { actorId?: string; statePath?: string; port?: number } = {},
): Promise<Peer> {
  const transport = await UdpTransport.bind({
    host: '127.0.0.1',
    port: options.port ?? 0,
    key,
    clusterId: 'test',
    logger,
  });
  const actorId = options.actorId ?? crypto.randomUUID().replaceAll('-', '');
  const statePath = options.statePath ?? join(tempDir(), 'members.json');
  const membership = new Membership({
    transport,
    identity: { actorId, addr: transport.addr, ts: Date.now() },
    bootstrap,
    statePath,
    config: { probeIntervalMs: 50 },
  });
  membership.start();
  const started = { transport, membership, statePath, actorId };
  peers.push(started);
  return started;
}

const alive = (p: Peer) => p.membership.members().filter((m) => m.state === 'alive');

/** Four members joined through the first, each seeing the other three alive. */
async function fourAlive(): Promise<Peer[]> {
  const all = [await peer([])];
  for (let i = 0; i < 3; i++) all.push(await peer([nth(all, 0).transport.addr]));
  await eventually(async () => {
    for (const p of all) expect(alive(p)).toHaveLength(3);
  });
  return all;
}
const stateOf = (p: Peer, actorId: string) =>
  p.membership.members().find((m) => m.actorId === actorId)?.state;

describe('frames', () => {
  it('round-trip, and refuse another cluster, a bad MAC and garbage', () => {
    const frame = encodeFrame(key, 'test', Channel.SYNC, Buffer.from('hello'));
    const opened = decodeFrame(key, 'test', frame);
    expect(opened).toEqual({ channel: Channel.SYNC, body: expect.anything() });
    expect(Buffer.from((opened as { body: Uint8Array }).body).toString()).toBe('hello');
    expect(decodeFrame(key, 'other', frame)).toEqual({ rejected: 'cluster' });
    expect(decodeFrame(Buffer.from('another-key-0123456789'), 'test', frame)).toEqual({
      rejected: 'mac',
    });
    const tampered = Buffer.from(frame);
    const at = tampered.indexOf('hello') + 1;
    tampered[at] = present(tampered[at], 'a byte of the body') ^ 1;
    expect(decodeFrame(key, 'test', tampered)).toEqual({ rejected: 'mac' });
    expect(decodeFrame(key, 'test', Buffer.from([0xff, 0xff, 0xff]))).toEqual({
      rejected: 'malformed',
    });
  });

  it('a transport drops and counts frames of another cluster or key', async () => {
    const receiver = await UdpTransport.bind({
      host: '127.0.0.1',
      port: 0,
      key,
      clusterId: 'test',
      logger,
    });
    const wrongCluster = await UdpTransport.bind({
      host: '127.0.0.1',
      port: 0,
      key,
      clusterId: 'nope',
      logger,
    });
    const wrongKey = await UdpTransport.bind({
      host: '127.0.0.1',
      port: 0,
      key: Buffer.from('not-the-fleet-key-000'),
      clusterId: 'test',
      logger,
    });
    const received: string[] = [];
    receiver.on(Channel.BROADCAST, (body) => received.push(Buffer.from(body).toString()));
    try {
      wrongCluster.send(receiver.addr, Channel.BROADCAST, Buffer.from('a'));
      wrongKey.send(receiver.addr, Channel.BROADCAST, Buffer.from('b'));
      await eventually(async () =>
        expect(receiver.rejections).toMatchObject({ cluster: 1, mac: 1 }),
      );
      expect(received).toEqual([]);
    } finally {
      for (const transport of [receiver, wrongCluster, wrongKey]) transport.close();
    }
  });
});

describe('SWIM membership', () => {
  it('scales its timings with the cluster as foca WAN does', () => {
    expect(swimConfig(5, 5_000)).toMatchObject({ maxTransmissions: 3, suspectToDownMs: 30_000 });
    expect(swimConfig(100, 5_000)).toMatchObject({ maxTransmissions: 8, suspectToDownMs: 60_000 });
  });

  it('wakes for gossip only while it has updates and someone to tell', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
    try {
      const lone = await peer([]);
      // The probe period and the periodic announce; no gossip round for its own alive update.
      expect(vi.getTimerCount()).toBe(2);
      await lone.membership.stop();
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('five members converge to all alive from one bootstrap address', async () => {
    const first = await peer([]);
    const rest = await Promise.all([1, 2, 3, 4].map(() => peer([first.transport.addr])));
    const all = [first, ...rest];
    await eventually(async () => {
      for (const p of all) expect(alive(p)).toHaveLength(4);
    });
  });

  it('declares a stopped member down everywhere, and it rejoins from its saved members after a restart', async () => {
    const all = await fourAlive();
    const victim = present(all.pop(), 'the last member');
    await victim.membership.stop();
    victim.transport.close();
    peers.splice(peers.indexOf(victim), 1);
    await eventually(async () => {
      for (const p of all) expect(stateOf(p, victim.actorId)).toBe('down');
    });
    // Same actor, same saved members, no bootstrap: a renewed identity that replaces the old.
    const back = await peer([], { actorId: victim.actorId, statePath: victim.statePath });
    await eventually(async () => {
      for (const p of all) expect(stateOf(p, victim.actorId)).toBe('alive');
      expect(alive(back)).toHaveLength(3);
    });
  });

  it('a member back under a renewed identity at the same address leaves the members file as it was', async () => {
    const all = [await peer([])];
    for (let i = 0; i < 2; i++) all.push(await peer([nth(all, 0).transport.addr]));
    await eventually(async () => {
      for (const p of all) expect(alive(p)).toHaveLength(2);
    });
    const inode = () => statSync(nth(all, 0).statePath).ino;
    const before = inode();
    const victim = present(all.pop(), 'the last member');
    const port = Number(victim.transport.addr.split(':')[1]);
    await victim.membership.stop();
    victim.transport.close();
    peers.splice(peers.indexOf(victim), 1);
    // The first member takes the renewed identity with an 'up', right after it would have
    // written its file: the file is looked at once that has happened, not after some time.
    const first = nth(all, 0).membership;
    const renewed = new Promise<void>((resolve) => {
      const onUp = (member: { actorId: string }) => {
        if (member.actorId !== victim.actorId) return;
        first.off('up', onUp);
        resolve();
      };
      first.on('up', onUp);
    });
    const back = await peer([nth(all, 0).transport.addr], { actorId: victim.actorId, port });
    await renewed;
    await eventually(async () => expect(alive(back)).toHaveLength(2));
    // Every join rewrites the file (a new inode, by rename); the same actor at the same address
    // is not news, and under load such rejoins are frequent.
    expect(inode()).toBe(before);
  });

  it('a member that misses probes for a while is suspected, refutes it, and stays alive', async () => {
    const all = await fourAlive();
    const quiet = nth(all, 3);
    const suspicions: string[] = [];
    const watcher = setInterval(() => {
      for (const p of all.slice(0, 3)) {
        if (stateOf(p, quiet.actorId) === 'suspect') suspicions.push('suspect');
      }
    }, 5);
    quiet.transport.paused = true;
    await eventually(async () => expect(suspicions.length).toBeGreaterThan(0), 5_000, 10);
    quiet.transport.paused = false;
    await eventually(async () => {
      for (const p of all.slice(0, 3)) expect(stateOf(p, quiet.actorId)).toBe('alive');
    });
    clearInterval(watcher);
    // The quiet member may have declared the others down meanwhile: told so, they rejoin.
    await eventually(async () => expect(alive(quiet)).toHaveLength(3));
  });

  it('keeps a suspect among the members broadcasts go to, and out of the sync candidates', async () => {
    const all = await fourAlive();
    const quiet = nth(all, 3);
    // What a member that suspects the quiet one picks, seen the moment it does.
    const seen: { random: string[]; nearest: string[]; active: number; alive: string[] }[] = [];
    const watcher = setInterval(() => {
      for (const p of all.slice(0, 3)) {
        if (stateOf(p, quiet.actorId) !== 'suspect') continue;
        const ids = (members: { actorId: string }[]) => members.map((member) => member.actorId);
        seen.push({
          random: ids(p.membership.random(10)),
          nearest: ids(p.membership.nearest(10)),
          active: p.membership.activeCount(),
          alive: ids(p.membership.randomAlive(10)),
        });
      }
    }, 5);
    quiet.transport.paused = true;
    try {
      await eventually(async () => expect(seen.length).toBeGreaterThan(0), 5_000, 10);
    } finally {
      clearInterval(watcher);
      quiet.transport.paused = false;
    }
    const first = present(seen[0], 'a view while suspecting');
    expect(first.random).toContain(quiet.actorId);
    expect(first.nearest).toContain(quiet.actorId);
    expect(first.active).toBe(3);
    expect(first.alive).not.toContain(quiet.actorId);
    expect(first.alive).toHaveLength(2);
  });
});
