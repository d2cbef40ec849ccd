import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { packImage } from '@fleet/images';
import { sampleImagesDir } from '@fleet/sample-images';
import { present } from '@fleet/service/invariant';
import { Header } from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Fleet, flydToken, operatorToken, startFleet } from './fleet.js';

const helloImage = join(sampleImagesDir, 'hello');
/** flaps' --image-bytes-max here: an archive over it is refused. */
const archiveBytesMax = 200_000;
/** flyd's --image-cache-bytes-max here: three padded images do not fit. */
const cacheBytesMax = 250_000;

/** POSTs an archive as an upload of `tag` (optionally with the digest the client expects). */
async function upload(
  fleet: Fleet,
  app: string,
  tag: string,
  archive: Buffer,
  digest?: string,
  // biome-ignore lint/suspicious/noExplicitAny: tests read whatever shape the API answered.
): Promise<{ status: number; body: any }> {
  const query = new URLSearchParams({ tag, ...(digest ? { digest } : {}) });
  const response = await fetch(`${fleet.api}/v1/apps/${app}/images?${query}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${operatorToken}`, 'content-type': 'application/gzip' },
    body: archive,
    signal: AbortSignal.timeout(30_000),
  });
  return { status: response.status, body: await response.json() };
}

/** A .tar.gz of one entry with this path, headers written by tar's Header (no path checks). */
function archiveWithEntry(path: string): Buffer {
  const body = Buffer.from('owned\n');
  const block = Buffer.alloc(512);
  new Header({ path, type: 'File', size: body.length, mode: 0o644, mtime: new Date(0) }).encode(
    block,
    0,
  );
  return gzipSync(
    Buffer.concat([block, body, Buffer.alloc(512 - body.length), Buffer.alloc(1024)]),
  );
}

/** The sum of a counter's samples on a flyd's /metrics. */
async function counter(base: string, name: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

// Images uploaded to flaps and pulled by a worker, on a real fleet (corrosion, flaps with an
// images dir and a small archive bound, one flyd with a small image cache): each test uploads
// archives packed by @fleet/images and checks the API, the machine, the worker's cache and its
// pull counter.
describe('images', () => {
  let fleet: Fleet;
  let dir: string;
  const app = 'imgs';

  /** A copy of the hello image whose pad file makes it differ (and weigh `padBytes`). */
  const helloVariant = async (label: string, padBytes = 10) => {
    const folder = join(dir, label);
    cpSync(helloImage, folder, { recursive: true });
    writeFileSync(join(folder, 'pad.txt'), `${label}\n`.padEnd(padBytes, '.'));
    const manifest = { cmd: ['node', 'server.mjs'], env: { GREETING: `from ${label}` } };
    writeFileSync(join(folder, 'image.json'), JSON.stringify(manifest));
    return packImage(folder);
  };

  const createMachine = async (image: string) => {
    const config = {
      image,
      services: [
        { protocol: 'tcp', internal_port: 8080, ports: [{ port: 80, handlers: ['http'] }] },
      ],
    };
    const created = await fleet.call('POST', `/v1/apps/${app}/machines`, { region: 'ams', config });
    expect(created.status).toBe(200);
    const id = created.body.id as string;
    const waited = await fleet.call(
      'GET',
      `/v1/apps/${app}/machines/${id}/wait?state=started&timeout=30`,
    );
    expect(waited.status).toBe(200);
    return (await fleet.call('GET', `/v1/apps/${app}/machines/${id}`)).body;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flaps-images-test-'));
    fleet = await startFleet({
      flapsArgs: ['--image-bytes-max', String(archiveBytesMax)],
      flydArgs: ['--image-cache-bytes-max', String(cacheBytesMax)],
    });
    expect(
      (await fleet.call('POST', '/v1/apps', { app_name: app, org_slug: 'personal' })).status,
    ).toBe(201);
  });

  afterAll(async () => {
    await fleet?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores an upload once by its digest: a repeat answers 200, and the tag lists one image', async () => {
    const image = await helloVariant('once');
    const first = await upload(fleet, app, 'once:v1', image.archive);
    expect(first).toMatchObject({
      status: 201,
      body: { name: 'once', tag: 'v1', digest: image.digest },
    });
    const again = await upload(fleet, app, 'once:v1', image.archive, image.digest);
    expect(again).toMatchObject({ status: 200, body: { digest: image.digest } });
    const listed = (await fleet.call('GET', `/v1/apps/${app}/images`)).body.images as {
      reference: string;
      digest: string;
    }[];
    const once = listed.filter((row) => row.reference.startsWith('once'));
    expect(once.map((row) => row.reference).sort()).toEqual([`once:v1`, `once@${image.digest}`]);
    expect(new Set(once.map((row) => row.digest))).toEqual(new Set([image.digest]));
  });

  it('refuses a wrong digest, an oversized archive and a traversal archive with a 4xx naming the problem', async () => {
    const image = await helloVariant('refused');
    const wrong = `sha256:${'0'.repeat(64)}`;
    const mismatch = await upload(fleet, app, 'refused:v1', image.archive, wrong);
    expect(mismatch.status).toBe(400);
    expect(mismatch.body).toMatchObject({ code: 'FLAPS_ERR_IMAGE_DIGEST' });
    expect(mismatch.body.error).toContain(image.digest);
    const oversized = await upload(fleet, app, 'refused:v1', Buffer.alloc(archiveBytesMax + 1));
    expect(oversized).toMatchObject({ status: 413, body: { code: 'FLAPS_ERR_IMAGE_TOO_LARGE' } });
    const traversal = await upload(fleet, app, 'refused:v1', archiveWithEntry('../../escaped'));
    expect(traversal).toMatchObject({ status: 400, body: { code: 'FLAPS_ERR_BAD_IMAGE' } });
    expect(traversal.body.error).toMatch(/IMAGE_ERR_UNSAFE_ENTRY.*\.\.\/\.\.\/escaped/);
    const badTag = await upload(fleet, app, 'Refused:v1', image.archive);
    expect(badTag).toMatchObject({ status: 400, body: { code: 'FLAPS_ERR_BAD_REQUEST' } });
    const listed = (await fleet.call('GET', `/v1/apps/${app}/images`)).body.images as {
      name: string;
    }[];
    expect(listed.filter((row) => row.name === 'refused')).toEqual([]);
  });

  it('runs a machine created from name:tag, pinning the digest in its config; a second one is not pulled again', async () => {
    const image = await helloVariant('web');
    expect((await upload(fleet, app, 'web:v1', image.archive)).status).toBe(201);
    const worker = present(fleet.workers.w1, 'fleet.workers.w1').url;
    const pullsBefore = await counter(worker, 'flyd_image_pulls_total');
    const first = await createMachine('web:v1');
    expect(first.config.image).toBe(`web@${image.digest}`);
    expect(first.image_ref).toMatchObject({ repository: 'web', digest: image.digest });
    const answer = await fetch(`http://${first.private_addr}/`, {
      signal: AbortSignal.timeout(5_000),
    });
    expect(((await answer.json()) as { image: string }).image).toBe(`web@${image.digest}`);
    expect(await counter(worker, 'flyd_image_pulls_total')).toBe(pullsBefore + 1);
    // image.json's env reaches the machine (and exec in it).
    const printed = await fleet.call('POST', `/v1/apps/${app}/machines/${first.id}/exec`, {
      command: ['printenv', 'GREETING'],
    });
    expect(printed.body).toMatchObject({ stdout: 'from web\n', exit_code: 0 });
    const second = await createMachine(`web@${image.digest}`);
    expect(second.config.image).toBe(`web@${image.digest}`);
    expect(await counter(worker, 'flyd_image_pulls_total')).toBe(pullsBefore + 1);
    const unknown = await fleet.call('POST', `/v1/apps/${app}/machines`, {
      config: { image: `web@sha256:${'1'.repeat(64)}` },
    });
    expect(unknown).toMatchObject({ status: 400, body: { code: 'FLAPS_ERR_BAD_CONFIG' } });
    expect(unknown.body.error).toContain('config.image');
  });

  it('serves a worker the archive only with the internal token, and those bytes are the digest', async () => {
    const image = await helloVariant('pulled');
    expect((await upload(fleet, app, 'pulled:v1', image.archive)).status).toBe(201);
    const download = (token: string) =>
      fetch(`${fleet.api}/internal/images/${image.digest}`, {
        headers: { authorization: `Bearer ${token}` },
        signal: AbortSignal.timeout(10_000),
      });
    for (const token of [operatorToken, 'not-the-token']) {
      const refused = await download(token);
      expect(refused.status).toBe(401);
      expect((await refused.json()) as object).toMatchObject({ code: 'FLAPS_ERR_UNAUTHORIZED' });
    }
    const served = await download(flydToken);
    expect(served.status).toBe(200);
    const bytes = Buffer.from(await served.arrayBuffer());
    expect(`sha256:${createHash('sha256').update(bytes).digest('hex')}`).toBe(image.digest);
  });

  it('evicts the least recently used image past the cache bound, never one a machine uses', async () => {
    const cacheDir = join(present(fleet.workers.w1, 'fleet.workers.w1').dataDir, 'images');
    const cachedHere = (digest: string) =>
      existsSync(join(cacheDir, digest.slice('sha256:'.length)));
    const [kept, unused, newest] = await Promise.all(
      ['kept', 'unused', 'newest'].map((label) => helloVariant(label, 100_000)),
    );
    for (const [label, image] of [
      ['kept', present(kept, 'kept')],
      ['unused', present(unused, 'unused')],
      ['newest', present(newest, 'newest')],
    ] as const) {
      expect((await upload(fleet, app, `${label}:v1`, image.archive)).status).toBe(201);
    }
    // `kept` is used first (the oldest use), so only its machine keeps it from eviction.
    await createMachine('kept:v1');
    const gone = await createMachine('unused:v1');
    expect(
      (await fleet.call('DELETE', `/v1/apps/${app}/machines/${gone.id}?force=true`)).status,
    ).toBe(200);
    await createMachine('newest:v1');
    expect(cachedHere(present(kept, 'kept').digest)).toBe(true);
    expect(cachedHere(present(unused, 'unused').digest)).toBe(false);
    expect(cachedHere(present(newest, 'newest').digest)).toBe(true);
    expect(
      await counter(
        present(fleet.workers.w1, 'fleet.workers.w1').url,
        'flyd_image_evictions_total',
      ),
    ).toBeGreaterThanOrEqual(1);
  });
});
