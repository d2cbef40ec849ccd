import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const here = fileURLToPath(new URL('.', import.meta.url));

/** `npx fleet status` typed in `cwd`: its exit code and what it said on stderr. */
function npxFleetStatus(cwd: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile('npx', ['fleet', 'status'], { cwd }, (error, _out, stderr) =>
      resolve({ code: error ? (error.code as number) : 0, stderr }),
    );
    child.stdin?.end();
  });
}

// The README's way: `cd infra/examples/hello-node && npx fleet deploy`. npx runs a workspace's
// bin in the folder of the nearest package.json, not where it was typed: the command must still
// read the fly.toml of the folder the user is in.
describe('npx fleet', () => {
  it("works in the folder it was typed in, not the workspace's", async () => {
    const { code, stderr } = await npxFleetStatus(here);
    expect(code).toBe(2);
    expect(stderr).toContain(`(${join(here, 'fly.toml')} not found)`);
  });

  // Outside apps/cli npx finds `fleet` only where `npm ci` linked it (node_modules/.bin), which
  // it does only for a bin whose file exists when it installs: before anything is built. When
  // the bin was dist/main.js, a fresh clone answered "could not determine executable to run".
  it('is found anywhere in the repository, as npm ci linked it', async () => {
    const docs = join(here, '..', '..', '..', 'docs');
    const { code, stderr } = await npxFleetStatus(docs);
    expect(stderr).toContain(`(${join(docs, 'fly.toml')} not found)`);
    expect(code).toBe(2);
  });
});
