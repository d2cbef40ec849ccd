import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CatalogErrorCodes } from '@fleet/catalog';
import { FleetKeyErrors } from '@fleet/fleet-key';
import { errorCodesInReadme } from '@fleet/service';
import { describe, expect, it } from 'vitest';
import { ProxyErrors, TlsErrors } from '../src/errors.js';

// The README's error table lists the codes of src/errors.ts, the fleet key's, and the catalog's
// codes the proxy answers with (every one but BAD_ROW, which never reaches a request).
describe('proxy error codes', () => {
  it('are documented', () => {
    const readme = join(dirname(fileURLToPath(import.meta.url)), '..', 'README.md');
    expect(errorCodesInReadme(readme).sort()).toEqual(
      [
        ...Object.keys(ProxyErrors),
        ...Object.keys(TlsErrors),
        ...Object.keys(FleetKeyErrors),
        ...Object.keys(CatalogErrorCodes).filter((code) => code !== 'CATALOG_ERR_BAD_ROW'),
      ].sort(),
    );
  });
});
