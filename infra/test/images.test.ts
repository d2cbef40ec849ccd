import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { FlapsClient, type Machine } from '@fleet/flaps-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForProxy } from '../src/launcher/demo.js';
import type { Fleet } from '../src/launcher/fleet.js';
import { imagesDir } from '../src/launcher/paths.js';
import { uploadSampleImages } from '../src/launcher/sample-images.js';
import { startTestFleet } from './test-fleet.js';

/** Sends `payload` on a fresh TCP connection, half-closes, and resolves with all that came back. */
function echoRoundTrip(address: string, payload: Buffer): Promise<Buffer> {
  const [host, port] = address.split(':') as [string, string];
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect({ host, port: Number(port) }, () => socket.end(payload));
    socket.setTimeout(10_000, () => socket.destroy(new Error('echo timed out')));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => resolve(Buffer.concat(chunks)));
    socket.on('error', reject);
  });
}

/** GET on a machine's private address (what the proxy dials); the status and the body as text. */
async function getFrom(address: string, path: string): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://${address}${path}`, { signal: AbortSignal.timeout(5_000) });
  return { status: response.status, body: await response.text() };
}

// The sample images of packages/sample-images/images, each started as a machine through flaps on a real one-host
// fleet (corrosion, flyd with packages/sample-images/images, flaps, fly-proxy) and talked to on its private
// address, and for `static` through the edge proxy too.
describe('the sample machine images', () => {
  const app = 'images';
  let fleet: Fleet;
  let flaps: FlapsClient;

  /** Creates a machine of `config` in the app and resolves with it once started. */
  const startedMachine = async (config: Record<string, unknown>): Promise<Machine> => {
    const created = await flaps.createMachine(app, { region: 'local', config });
    await flaps.waitMachine(app, created.id, 'started');
    return flaps.call<Machine>('GET', `/v1/apps/${app}/machines/${created.id}`);
  };

  beforeAll(async () => {
    fleet = await startTestFleet('images');
    flaps = new FlapsClient(fleet.urls.flaps, fleet.secrets.apiToken);
    await flaps.createApp(app);
  });

  afterAll(async () => {
    await fleet?.stop();
  });

  it('echo sends back every byte of a connection, then closes after the client half-closes', async () => {
    const machine = await startedMachine({
      image: 'echo',
      services: [{ protocol: 'tcp', internal_port: 7000, ports: [{ port: 7000 }] }],
    });
    // Its own address on its internal port as root (a network of its own), else a loopback port.
    expect(machine.private_addr).toMatch(/^(198\.1[89]\.\d+\.\d+:7000|127\.0\.0\.1:\d+)$/);
    // Larger than a socket buffer, so the echo's backpressure is exercised.
    const payload = randomBytes(1024 * 1024);
    const [first, second] = await Promise.all([
      echoRoundTrip(machine.private_addr!, payload),
      echoRoundTrip(machine.private_addr!, Buffer.from('second client\n')),
    ]);
    expect(first.equals(payload)).toBe(true);
    expect(second.toString()).toBe('second client\n');
  });

  it("static serves its own folder's files, a directory's index.html, and nothing outside", async () => {
    const machine = await startedMachine({
      image: 'static',
      services: [
        { protocol: 'tcp', internal_port: 8080, ports: [{ port: 80, handlers: ['http'] }] },
      ],
    });
    const address = machine.private_addr!;
    const index = await getFrom(address, '/');
    expect(index.status).toBe(200);
    expect(index.body).toMatch(/static/);
    const manifest = await getFrom(address, '/image.json');
    expect(JSON.parse(manifest.body).cmd).toEqual(['node', 'server.mjs']);
    expect((await getFrom(address, '/no-such-file')).status).toBe(404);
    expect((await getFrom(address, '/%2e%2e/%2e%2e/%2e%2e/etc/passwd')).status).toBe(404);
    expect((await getFrom(address, '/..%2f..%2f..%2fetc/passwd')).status).toBe(404);
    // Through the edge proxy by the app's name, as a user reaches it.
    const proxied = await waitForProxy(fleet.urls.proxy, `${app}.fleet.test`, (reply) =>
      reply.body.includes('static'),
    );
    expect(proxied.status).toBe(200);
  });

  it('uploads as the launcher does, twice, to the same digests and one image each, and echo runs by its digest', async () => {
    const upload = () => uploadSampleImages(flaps, app, imagesDir);
    const first = await upload();
    expect([...first.keys()]).toEqual(['echo', 'hello', 'static']);
    expect(await upload()).toEqual(first);
    const listed = await flaps.call<{ images: { reference: string; digest: string }[] }>(
      'GET',
      `/v1/apps/${app}/images`,
    );
    const pinnedRows = listed.images.filter((row) => row.reference.includes('@'));
    expect(pinnedRows.map((row) => row.reference).sort()).toEqual([...first.values()].sort());
    const machine = await startedMachine({
      image: 'echo:latest',
      services: [{ protocol: 'tcp', internal_port: 7000, ports: [{ port: 7000 }] }],
    });
    expect((machine.config as { image: string }).image).toBe(first.get('echo'));
    const echoed = await echoRoundTrip(machine.private_addr!, Buffer.from('pinned\n'));
    expect(echoed.toString()).toBe('pinned\n');
  });

  it('static serves the files of its mounted volume (FLEET_VOLUME_DIR) instead', async () => {
    const volume = await flaps.call<{ id: string }>('POST', `/v1/apps/${app}/volumes`, {
      name: 'site',
      region: 'local',
    });
    // The volume is a directory of flyd's data dir; the site is put there before the machine runs.
    const volumeDir = join(fleet.hostDir, 'flyd', 'volumes', volume.id);
    writeFileSync(join(volumeDir, 'hello.txt'), 'from the volume\n');
    const machine = await startedMachine({
      image: 'static',
      mounts: [{ volume: volume.id, path: '/site' }],
      services: [
        { protocol: 'tcp', internal_port: 8080, ports: [{ port: 80, handlers: ['http'] }] },
      ],
    });
    const address = machine.private_addr!;
    expect(await getFrom(address, '/hello.txt')).toEqual({
      status: 200,
      body: 'from the volume\n',
    });
    // No index.html on the volume: the directory is listed.
    const listing = await getFrom(address, '/');
    expect(listing.body.split('\n')).toContain('hello.txt');
    expect((await getFrom(address, '/image.json')).status).toBe(404);
  });
});
