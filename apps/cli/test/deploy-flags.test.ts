import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runDeploy } from '../src/commands/deploy.js';
import { exitCodes } from '../src/errors.js';

// `fleet deploy`'s flags are checked before any call to flaps: a bad one is a usage error (exit 2)
// naming it and the value.
describe('fleet deploy flags', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'fleet-cli-deploy-'));
    writeFileSync(join(dir, 'fly.toml'), "app = 'shop'\n[build]\n  image = 'hello'\n");
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a --wait-timeout that is not a Go duration or seconds', async () => {
    for (const waitTimeout of ['5 minutes', '-1s', '1d', 'soon'])
      await expect(
        runDeploy({ config: join(dir, 'fly.toml'), waitTimeout, ha: true }, {}),
      ).rejects.toMatchObject({
        message: `--wait-timeout must be a duration like 90s or 5m, not ${waitTimeout}`,
        exitCode: exitCodes.usage,
      });
  });
});
