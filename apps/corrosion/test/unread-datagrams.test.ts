import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import {
  procNetKey,
  receiveQueueBytes,
  UnreadDatagrams,
} from '../src/transport/unread-datagrams.js';

const procNetUdp = [
  '   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops',
  ' 7032: 0100007F:A6B4 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 3066129 2 00000000659f724a 0',
  '14702: 0100007F:84AA 00000000:0000 07 00000000:0001B400 00:00000000 00000000     0        0 3066124 2 000000006aeaffbd 0',
].join('\n');

describe('the unread bytes of a UDP socket, from /proc/net/udp', () => {
  it('finds the socket by its address as the kernel prints it', () => {
    expect(procNetKey('127.0.0.1:33962')).toBe('0100007F:84AA');
    expect(procNetKey('0.0.0.0:8787')).toBe('00000000:2253');
    expect(receiveQueueBytes(procNetUdp, '0100007F:84AA')).toBe(0x1b400);
    expect(receiveQueueBytes(procNetUdp, '0100007F:A6B4')).toBe(0);
    expect(receiveQueueBytes(procNetUdp, '0100007F:0001')).toBeUndefined();
  });

  it('says how long the queue has held datagrams, since it was last seen (nearly) empty', () => {
    const queued = (bytes: number) =>
      procNetUdp.replace('00000000:0001B400', `00000000:${bytes.toString(16).padStart(8, '0')}`);
    let text = queued(0);
    const unread = new UnreadDatagrams('127.0.0.1:33962', () => text);
    expect(unread.behindMs(1_000)).toBe(0);
    text = queued(200_000);
    expect(unread.behindMs(1_500)).toBe(500);
    expect(unread.behindMs(2_500)).toBe(1_500);
    text = queued(20_000); // a few datagrams between two reads: read up
    expect(unread.behindMs(3_000)).toBe(0);
    text = queued(200_000);
    expect(unread.behindMs(3_200)).toBe(200);
    expect(unread.bytes()).toBe(200_000);
  });

  it('sees nothing waiting where the socket or the file is missing', () => {
    expect(new UnreadDatagrams('127.0.0.1:1', () => procNetUdp).behindMs()).toBe(0);
    const unreadable = new UnreadDatagrams('127.0.0.1:33962', () => {
      throw new Error('ENOENT: no /proc here');
    });
    expect(unreadable.bytes()).toBe(0);
    expect(unreadable.behindMs()).toBe(0);
  });
});

describe.runIf(existsSync('/proc/net/udp'))(
  'the receive queue of a live socket, as the kernel counts it',
  () => {
    let child: ChildProcess | undefined;
    afterEach(() => {
      child?.kill('SIGKILL');
      child = undefined;
    });

    it('counts datagrams a stalled process has not read, and nothing once it reads them', async () => {
      // A process that binds a socket, then blocks its event loop (a stall) for 1.5 s, then
      // reads; it says its port when bound and "read" once it has read 50 datagrams (about
      // 100 KB as the kernel counts them: under the default receive buffer, over the
      // nearly-empty mark).
      const script = `
      const s = require('node:dgram').createSocket('udp4');
      let n = 0;
      s.on('message', () => { if (++n === 50) console.log('read'); });
      s.bind(0, '127.0.0.1', () => {
        console.log(s.address().port);
        process.stdin.once('data', () => {
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Number(process.argv[1]));
        });
      });`;
      child = spawn(process.execPath, ['-e', script, '1500'], {
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      const lines = child.stdout?.setEncoding('utf8');
      const [port] = (await once(lines as NodeJS.ReadableStream, 'data')) as [string];
      const addr = `127.0.0.1:${Number(port)}`;
      const unread = new UnreadDatagrams(addr);
      expect(unread.behindMs()).toBe(0);
      child.stdin?.write('stall\n');
      await new Promise((resolve) => setTimeout(resolve, 100)); // the child is now blocked
      const sender = createSocket('udp4');
      try {
        for (let i = 0; i < 50; i++) sender.send(Buffer.alloc(1000, i), Number(port), '127.0.0.1');
        await new Promise((resolve) => setTimeout(resolve, 200));
        expect(unread.bytes()).toBeGreaterThan(50 * 1000);
        expect(unread.behindMs()).toBeGreaterThanOrEqual(200);
        await once(lines as NodeJS.ReadableStream, 'data'); // "read", after the stall
        expect(unread.bytes()).toBe(0);
        expect(unread.behindMs()).toBe(0);
      } finally {
        sender.close();
      }
    });
  },
);
