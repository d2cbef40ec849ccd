import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const here = fileURLToPath(new URL('.', import.meta.url));

// The README's way: `cd infra/examples/hello-node && npx fleet deploy`. npx runs a workspace's
// bin in the folder of the nearest package.json, not where it was typed: the command must still
// read the fly.toml of the folder the user is in.
describe('npx fleet', () => {
  it("works in the folder it was typed in, not the workspace's", async () => {
    const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>(
      (resolve) => {
        const child = execFile('npx', ['fleet', 'status'], { cwd: here }, (error, _out, err) =>
          resolve({ code: error ? (error.code as number) : 0, stderr: err }),
        );
        child.stdin?.end();
      },
    );
    expect(code).toBe(2);
    expect(stderr).toContain(`(${join(here, 'fly.toml')} not found)`);
  });
});
