import { execFile } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { folderPerTest } from './temp-folder.js';

const bin = new URL('../bin/fleet.js', import.meta.url).pathname;

describe('fleet config validate', () => {
  const folder = folderPerTest('fleet-cli-config-');

  const validate = (text: string | undefined) => {
    if (text !== undefined) writeFileSync(join(folder.path, 'fly.toml'), text);
    return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      const child = execFile(
        process.execPath,
        [bin, 'config', 'validate'],
        // Not as `npx` runs it (vitest may): the bin would move to npm's INIT_CWD.
        { cwd: folder.path, env: { ...process.env, npm_command: '' } },
        (error, stdout, stderr) =>
          resolve({ code: error ? (error.code as number) : 0, stdout, stderr }),
      );
      child.stdin?.end();
    });
  };

  it('says a good fly.toml is valid, with its unknown keys as warnings', async () => {
    const good = await validate(
      "app = 'shop'\n[http_service]\n  internal_port = 8080\n  bogus = 1\n",
    );
    expect(good).toMatchObject({
      code: 0,
      stdout: `${join(folder.path, 'fly.toml')} is valid: app shop\n`,
    });
    expect(good.stderr).toContain('fly.toml:4: unknown key http_service.bogus (ignored)');
  });

  it('names every problem with its line and exits 2, as a deploy would refuse it', async () => {
    const bad = await validate("app = 'shop'\n[http_service]\n  internal_port = 'eighty'\n");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('fly.toml:3: http_service.internal_port must be integer');
    rmSync(join(folder.path, 'fly.toml'));
    const none = await validate(undefined);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/cannot read .*fly\.toml/);
  });
});
