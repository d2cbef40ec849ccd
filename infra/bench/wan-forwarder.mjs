// Bench of the WAN emulator's forwarder (npm run bench -w infra; root, after a build). Two hosts
// in two regions; prints, beside a baseline measured in the same run on a plain kernel path (a
// host talking to itself in its namespace):
//   - forwarding rate: UDP datagrams of 200 bytes sent as fast as one sender can for 3 s, how
//     many arrive per second (the forwarder drops what its queue cannot hold);
//   - added jitter: 500 UDP ping-pongs with a 20 ms one-way delay configured, the round trips'
//     p50/p99/max minus the configured 40 ms, and with no delay, against the baseline.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { inNamespace } from '../dist/hosts/netns.js';
import { parseTopology } from '../dist/topology/load.js';
import { forwarderCall } from '../dist/wan/forwarder.js';
import { startNetwork } from '../dist/wan/network.js';

const topology = parseTopology({
  regions: [
    { code: 'iad', name: 'Ashburn', lat: 38.94, lon: -77.46 },
    { code: 'lhr', name: 'London', lat: 51.47, lon: -0.45 },
  ],
  hosts: [
    { id: 'a', region: 'iad', roles: ['worker'] },
    { id: 'b', region: 'lhr', roles: ['edge'] },
  ],
  links: [{ between: ['iad', 'lhr'], latency_ms: 0 }],
});

const receiver = `
const dgram = require('node:dgram');
const socket = dgram.createSocket('udp4');
let count = 0;
socket.on('message', (message, from) => { count++; if (message[0] === 112) socket.send(message, from.port, from.address); });
socket.bind(0, process.argv[1], () => console.log(socket.address().port));
process.stdin.on('data', () => console.log(count));`;

const sender = `
const dgram = require('node:dgram');
const [address, port, mode, seconds] = process.argv.slice(1);
const socket = dgram.createSocket('udp4');
if (mode === 'flood') {
  const payload = Buffer.alloc(200, 102); // 'f': not echoed
  const end = performance.now() + Number(seconds) * 1000;
  let sent = 0;
  const burst = () => {
    if (performance.now() > end) { console.log(sent); socket.close(); return; }
    let pending = 64;
    for (let i = 0; i < 64; i++) socket.send(payload, Number(port), address, () => { sent++; if (--pending === 0) setImmediate(burst); });
  };
  burst();
} else {
  const rtts = [];
  const ping = () => {
    if (rtts.length === 500) { console.log(JSON.stringify(rtts)); socket.close(); return; }
    const start = performance.now();
    socket.once('message', () => { rtts.push(performance.now() - start); setTimeout(ping, 2); });
    socket.send(Buffer.from('p'), Number(port), address);
  };
  ping();
}`;

function runIn(namespace, script, args) {
  const program = inNamespace(namespace, process.execPath, ['-e', script, ...args]);
  const child = spawn(program.command, program.args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout });
  const next = () => new Promise((resolve) => lines.once('line', resolve));
  return { child, next };
}

async function measure(from, to) {
  const rx = runIn(to.namespace, receiver, [to.address]);
  const port = await rx.next();
  const flood = runIn(from.namespace, sender, [to.address, port, 'flood', '3']);
  const sent = Number(await flood.next());
  await new Promise((resolve) => setTimeout(resolve, 500)); // the last ones in flight
  rx.child.stdin.write('\n');
  const received = Number(await rx.next());
  const pings = runIn(from.namespace, sender, [to.address, port, 'ping', '0']);
  const rtts = JSON.parse(await pings.next()).sort((x, y) => x - y);
  rx.child.kill();
  const at = (share) => rtts[Math.min(rtts.length - 1, Math.floor(share * rtts.length))];
  return {
    sentPerS: sent / 3,
    receivedPerS: received / 3,
    p50: at(0.5),
    p99: at(0.99),
    max: rtts.at(-1),
  };
}

const show = (label, result, minusMs = 0) =>
  console.log(
    `${label.padEnd(36)} sent ${Math.round(result.sentPerS).toString().padStart(7)}/s  arrived ${Math.round(result.receivedPerS).toString().padStart(7)}/s  ` +
      `rtt${minusMs ? ` - ${minusMs} ms` : ''} p50 ${(result.p50 - minusMs).toFixed(2)}  p99 ${(result.p99 - minusMs).toFixed(2)}  max ${(result.max - minusMs).toFixed(2)} ms`,
  );

const stateDir = mkdtempSync(join(tmpdir(), 'wan-bench-'));
const network = await startNetwork(topology, stateDir);
try {
  const [a, b] = network.hosts;
  show('baseline: a host to itself (kernel)', await measure(b, b));
  show('through the forwarder, no delay', await measure(a, b));
  await forwarderCall(network.forwarder.controlPath, {
    op: 'link',
    a: 'iad',
    b: 'lhr',
    latency_ms: 20,
  });
  show('through the forwarder, 20 ms each way', await measure(a, b), 40);
  console.log(
    JSON.stringify((await forwarderCall(network.forwarder.controlPath, { op: 'stats' })).counters),
  );
} finally {
  await network.stop();
  rmSync(stateDir, { recursive: true, force: true });
}
