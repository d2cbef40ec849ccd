import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ImageError,
  inspectArchive,
  packImage,
  parseImageReference,
  parseManifest,
  unpackImage,
} from '../src/index.js';
import { type CraftedEntry, craftArchive, manifestEntry } from './archives.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'images-test-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** A small image folder: image.json, a script and a nested file. */
function makeFolder(name: string): string {
  const folder = join(dir, name);
  mkdirSync(join(folder, 'public'), { recursive: true });
  writeFileSync(
    join(folder, 'image.json'),
    JSON.stringify({ cmd: ['node', 'server.mjs'], env: { GREETING: 'hi' }, ports: [8080] }),
  );
  writeFileSync(join(folder, 'server.mjs'), 'console.log("up")\n');
  writeFileSync(join(folder, 'run.sh'), '#!/bin/sh\n');
  chmodSync(join(folder, 'run.sh'), 0o775);
  writeFileSync(join(folder, 'public', 'index.html'), '<h1>hi</h1>\n');
  return folder;
}

/** Writes `entries` as an archive file and resolves with the error its unpacking gives. */
async function refusal(entries: CraftedEntry[], limits?: Parameters<typeof unpackImage>[2]) {
  const file = join(dir, 'crafted.tar.gz');
  writeFileSync(file, craftArchive(entries));
  const error = await unpackImage(file, join(dir, 'root'), limits).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(ImageError);
  return error as ImageError;
}

describe('packing', () => {
  // The digest names the content: the same files packed twice, or copied elsewhere with other
  // times and a looser umask, give the same bytes; one changed byte gives another digest.
  it('the same folder always gives the same bytes and digest, wherever and whenever packed', async () => {
    const folder = makeFolder('one');
    const first = await packImage(folder);
    const again = await packImage(folder);
    expect(again.archive.equals(first.archive)).toBe(true);
    expect(first.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    const copy = join(dir, 'copy');
    cpSync(folder, copy, { recursive: true });
    utimesSync(join(copy, 'server.mjs'), new Date(2_000_000_000_000), new Date(2_000_000_000_000));
    chmodSync(join(copy, 'server.mjs'), 0o664);
    expect((await packImage(copy)).digest).toBe(first.digest);
    writeFileSync(join(copy, 'server.mjs'), 'console.log("up!")\n');
    expect((await packImage(copy)).digest).not.toBe(first.digest);
  });

  it('unpacks to the same files, modes and manifest it packed', async () => {
    const packed = await packImage(makeFolder('one'));
    expect(packed.manifest).toEqual({
      cmd: ['node', 'server.mjs'],
      env: { GREETING: 'hi' },
      ports: [8080],
    });
    const file = join(dir, 'image.tar.gz');
    writeFileSync(file, packed.archive);
    const root = join(dir, 'root');
    const summary = await unpackImage(file, root);
    expect(summary.manifest).toEqual(packed.manifest);
    expect(readFileSync(join(root, 'public', 'index.html'), 'utf8')).toBe('<h1>hi</h1>\n');
    expect(statSync(join(root, 'run.sh')).mode & 0o777).toBe(0o755);
    expect(statSync(join(root, 'server.mjs')).mode & 0o777).toBe(0o644);
  });

  it('refuses a folder without image.json, or one whose image.json breaks its shape', async () => {
    const folder = makeFolder('one');
    writeFileSync(join(folder, 'image.json'), JSON.stringify({ cmd: [], ports: [8080] }));
    await expect(packImage(folder)).rejects.toMatchObject({
      code: 'IMAGE_ERR_BAD_MANIFEST',
      message: /cmd/,
    });
    rmSync(join(folder, 'image.json'));
    await expect(packImage(folder)).rejects.toMatchObject({ code: 'IMAGE_ERR_BAD_FOLDER' });
  });
});

describe('unpacking refuses what could harm the worker, writing nothing', () => {
  it('a path that climbs out of the root', async () => {
    const error = await refusal([manifestEntry, { path: '../escaped', body: 'x' }]);
    expect(error.code).toBe('IMAGE_ERR_UNSAFE_ENTRY');
    expect(error.message).toContain('../escaped');
    expect(existsSync(join(dir, 'escaped'))).toBe(false);
    expect(existsSync(join(dir, 'root'))).toBe(false);
  });

  it('an absolute path', async () => {
    expect((await refusal([manifestEntry, { path: '/tmp/owned', body: 'x' }])).code).toBe(
      'IMAGE_ERR_UNSAFE_ENTRY',
    );
  });

  it('a symbolic link out of the root, and a file written through an in-root link', async () => {
    const out = await refusal([
      manifestEntry,
      { path: 'etc', type: 'SymbolicLink', linkpath: '../../etc' },
    ]);
    expect(out.message).toMatch(/symbolic link out/);
    const through = await refusal([
      manifestEntry,
      { path: 'here', type: 'SymbolicLink', linkpath: '.' },
      { path: 'here/up', type: 'SymbolicLink', linkpath: '..' },
    ]);
    expect(through.message).toMatch(/through a symbolic link/);
  });

  it('device files and FIFOs', async () => {
    expect(
      (await refusal([manifestEntry, { path: 'null', type: 'CharacterDevice' }])).message,
    ).toMatch(/CharacterDevice/);
    expect((await refusal([manifestEntry, { path: 'pipe', type: 'FIFO' }])).code).toBe(
      'IMAGE_ERR_UNSAFE_ENTRY',
    );
  });

  it('more bytes or entries than the limits', async () => {
    const big = { path: 'big', body: 'x'.repeat(10_000) };
    const bytes = await refusal([manifestEntry, big], { unpackedBytesMax: 5_000, entriesMax: 10 });
    expect(bytes.code).toBe('IMAGE_ERR_TOO_LARGE');
    const many = Array.from({ length: 5 }, (_, at) => ({ path: `f${at}`, body: '' }));
    const entries = await refusal([manifestEntry, ...many], {
      unpackedBytesMax: 5_000,
      entriesMax: 3,
    });
    expect(entries.message).toMatch(/more than 3 entries/);
  });

  it('an archive without image.json, and bytes that are not a .tar.gz', async () => {
    expect((await refusal([{ path: 'server.mjs', body: 'x' }])).code).toBe(
      'IMAGE_ERR_BAD_MANIFEST',
    );
    const file = join(dir, 'junk.tar.gz');
    writeFileSync(file, 'this is not an archive at all, not even close'.repeat(20));
    await expect(inspectArchive(file)).rejects.toMatchObject({ code: 'IMAGE_ERR_BAD_ARCHIVE' });
  });

  it('accepts a symbolic link that stays inside the root', async () => {
    const file = join(dir, 'ok.tar.gz');
    writeFileSync(
      file,
      craftArchive([
        manifestEntry,
        { path: 'a/b', body: 'x' },
        { path: 'link', type: 'SymbolicLink', linkpath: 'a/b' },
      ]),
    );
    await unpackImage(file, join(dir, 'root'));
    expect(readFileSync(join(dir, 'root', 'link'), 'utf8')).toBe('x');
  });
});

describe('references and manifests', () => {
  it('parses name, name:tag and name@digest, and names what is wrong otherwise', () => {
    const digest = `sha256:${'a'.repeat(64)}`;
    expect(parseImageReference('hello')).toEqual({ name: 'hello' });
    expect(parseImageReference('hello:v2')).toEqual({ name: 'hello', tag: 'v2' });
    expect(parseImageReference(`hello@${digest}`)).toEqual({ name: 'hello', digest });
    for (const bad of ['Hello', 'hello:', 'hello@sha256:abc', 'a:b:c', '../x']) {
      expect(() => parseImageReference(bad)).toThrow(/not an image reference/);
    }
  });

  it('names the bad field of a manifest', () => {
    expect(() => parseManifest('{"cmd":["x"],"env":{"A":1}}')).toThrow(/env\.A must be a string/);
    expect(() => parseManifest('{"cmd":["x"],"ports":[0]}')).toThrow(/ports/);
    expect(() => parseManifest('[]')).toThrow(/object/);
  });
});
