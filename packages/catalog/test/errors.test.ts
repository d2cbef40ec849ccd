import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorCodesInReadme } from '@fleet/service';
import { describe, expect, it } from 'vitest';
import { CatalogErrorCodes } from '../src/index.js';

// The README's error table and the registry in src/errors.ts list the same codes.
describe('catalog error codes', () => {
  it('are documented', () => {
    const readme = join(dirname(fileURLToPath(import.meta.url)), '..', 'README.md');
    expect(errorCodesInReadme(readme).sort()).toEqual(Object.keys(CatalogErrorCodes).sort());
  });
});
