import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig, usage } from '@fleet/service';
import { afterEach, describe, expect, it } from 'vitest';
import { fleetKeyFileSetting, fleetKeyOfFlag } from '../src/index.js';

const spec = { 'fleet-key-file': fleetKeyFileSetting('seals the test secrets') };
const info = { name: 'server', summary: 'a server holding the fleet key' };

// The one `--fleet-key-file` flag flaps and flyd declare, parsed as their main.ts parses it.
describe('the --fleet-key-file flag', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('reads the key the flag names, and gives none without the flag', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleet-key-flag-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'fleet.key'), 'test-fleet-key-0123456789abcdef\n');
    const given = parseConfig(info, spec, ['--fleet-key-file', join(dir, 'fleet.key')]);
    expect(fleetKeyOfFlag(given?.['fleet-key-file'])).toEqual(
      Buffer.from('test-fleet-key-0123456789abcdef'),
    );
    expect(fleetKeyOfFlag(parseConfig(info, spec, [])?.['fleet-key-file'])).toBeUndefined();
    expect(() =>
      fleetKeyOfFlag(
        parseConfig(info, spec, ['--fleet-key-file', join(dir, 'gone')])?.['fleet-key-file'],
      ),
    ).toThrow(expect.objectContaining({ code: 'FLEET_KEY_ERR_FILE' }));
  });

  it('is described the same way by every server, ending with its own use', () => {
    expect(usage(info, spec)).toContain(
      'the fleet key file (every host of the fleet holds the same): seals the test secrets',
    );
  });
});
