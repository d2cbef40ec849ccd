import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { errorCodesInReadme, HttpErrorCodes, ServiceErrorCodes } from '../src/index.js';

// The README's error table and the registries in src/error-codes.ts list the same codes.
describe('service error codes', () => {
  it('are documented', () => {
    const readme = join(dirname(fileURLToPath(import.meta.url)), '..', 'README.md');
    expect(errorCodesInReadme(readme).sort()).toEqual(
      [...Object.keys(HttpErrorCodes), ...Object.keys(ServiceErrorCodes)].sort(),
    );
  });
});
