import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorCodesInReadme } from '@fleet/service';
import { describe, expect, it } from 'vitest';
import { ProxyErrors, TlsErrors } from '../src/errors.js';

// The README's error table and the registries in src/errors.ts list the same codes.
describe('proxy error codes', () => {
  it('are documented', () => {
    const readme = join(dirname(fileURLToPath(import.meta.url)), '..', 'README.md');
    expect(errorCodesInReadme(readme).sort()).toEqual(
      [...Object.keys(ProxyErrors), ...Object.keys(TlsErrors)].sort(),
    );
  });
});
