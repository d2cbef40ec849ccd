import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { privateDir } from '../src/private-dir.js';

const modeOf = (path: string) => statSync(path).mode & 0o777;

describe('privateDir', () => {
  const made: string[] = [];
  afterEach(() => {
    for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  const base = () => {
    const dir = mkdtempSync(join(tmpdir(), 'private-dir-'));
    made.push(dir);
    return dir;
  };

  // The launcher's logs are `<state>/<host>/logs`, and flyd's data dir `<state>/<host>/flyd`: a
  // host folder made 0700 along with the logs kept machines from their roots, and flyd ran them
  // as root.
  it('makes the folder 0700 and the ones above it with the usual mode', () => {
    const root = base();
    const dir = privateDir(join(root, 'host', 'logs'));
    expect(modeOf(dir)).toBe(0o700);
    expect(modeOf(join(root, 'host'))).toBe(0o777 & ~process.umask());
  });

  it('closes a folder that was there with a wider mode', () => {
    const dir = join(base(), 'state');
    mkdirSync(dir);
    chmodSync(dir, 0o755);
    privateDir(dir);
    expect(modeOf(dir)).toBe(0o700);
  });
});
