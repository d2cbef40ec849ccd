// A floor, not a proxy: every client connection piped byte for byte to a connection of its own to
// the machine. No HTTP at all (no routing, no headers), so it shows what Node itself costs to move
// a request and its answer through a process: no HTTP proxy written for Node can be cheaper.
// Usage: floor-byte-relay.mjs <machine port> [workers]
import net from 'node:net';
import { serveOnWorkers } from './workers.mjs';

const machinePort = Number(process.argv[2]);
serveOnWorkers(Number(process.argv[3] ?? 1), (listening) => {
  const server = net.createServer((client) => {
    const machine = net.connect(machinePort, '127.0.0.1');
    for (const socket of [client, machine]) {
      socket.setNoDelay(true);
      socket.on('error', () => {}); // 'close' follows
    }
    client.on('data', (chunk) => machine.write(chunk));
    machine.on('data', (chunk) => client.write(chunk));
    client.on('close', () => machine.destroy());
    machine.on('close', () => client.destroy());
  });
  server.listen(0, '127.0.0.1', () => listening(server.address().port));
});
