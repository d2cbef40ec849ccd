import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorCodesInReadme } from '@fleet/service';
import { describe, expect, it } from 'vitest';
import { MachineConfigErrors } from '../src/index.js';

const readme = join(dirname(fileURLToPath(import.meta.url)), '..', 'README.md');

describe('error codes', () => {
  // The registry and the README's table list the same codes.
  it('agree between the registry and the README', () => {
    expect(errorCodesInReadme(readme).sort()).toEqual(Object.keys(MachineConfigErrors).sort());
  });
});
