import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { inNamespace } from '../src/hosts/netns.js';

/**
 * A small Node program run inside a host's namespace, as the harness runs servers: its first
 * stdout line is handed back (a server prints where it listens).
 */
export function runIn(namespace: string, script: string, args: string[] = []) {
  const program = inNamespace(namespace, process.execPath, ['-e', script, ...args]);
  const child = spawn(program.command, program.args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const firstLine = new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`exited with ${code} before printing`)));
  });
  return { child, firstLine };
}

export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

/** TCP and UDP echo on the host's address, port from the OS; prints `{tcp, udp}` ports. */
export const echoServer = `
const net = require('node:net'), dgram = require('node:dgram');
const [address] = process.argv.slice(1);
const tcp = net.createServer((socket) => socket.pipe(socket)).listen(0, address, () => {
  const udp = dgram.createSocket('udp4');
  udp.on('message', (message, from) => udp.send(message, from.port, from.address));
  udp.bind(0, address, () => console.log(JSON.stringify({ tcp: tcp.address().port, udp: udp.address().port })));
});`;

/**
 * Measures from inside a namespace: the TCP handshake's duration (one round trip) and a UDP
 * echo's, in ms, or {error} when nothing came back within the bound.
 */
export const roundTrips = `
const net = require('node:net'), dgram = require('node:dgram');
const [address, tcpPort, udpPort, boundMs] = process.argv.slice(1);
const tcp = () => new Promise((resolve) => {
  const start = performance.now();
  const socket = net.connect({ host: address, port: Number(tcpPort), timeout: Number(boundMs) });
  socket.once('connect', () => { resolve(performance.now() - start); socket.destroy(); });
  socket.once('timeout', () => { socket.destroy(); resolve(null); });
  socket.once('error', () => resolve(null));
});
const udp = () => new Promise((resolve) => {
  const socket = dgram.createSocket('udp4');
  const start = performance.now();
  const timer = setTimeout(() => { socket.close(); resolve(null); }, Number(boundMs));
  socket.once('message', () => { clearTimeout(timer); resolve(performance.now() - start); socket.close(); });
  socket.send('ping', Number(udpPort), address);
});
Promise.all([tcp(), udp()]).then(([tcpMs, udpMs]) => console.log(JSON.stringify({ tcpMs, udpMs })));`;
