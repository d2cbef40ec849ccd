import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorCodesInReadme } from '@fleet/service';
import { describe, expect, it } from 'vitest';
import { FleetKeyErrors } from '../src/index.js';

describe('error codes', () => {
  // The README's table and the registry are compared so that neither drifts from the other.
  it('the README lists exactly the registry', () => {
    const readme = join(dirname(fileURLToPath(import.meta.url)), '..', 'README.md');
    expect(errorCodesInReadme(readme).sort()).toEqual(Object.keys(FleetKeyErrors).sort());
  });
});
