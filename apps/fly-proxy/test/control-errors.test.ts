import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ControlErrors } from '../src/control/errors.js';

// The README's "Control channel errors" table lists exactly the codes of src/control/errors.ts.
describe('control channel error codes', () => {
  it('are documented', () => {
    const readme = readFileSync(
      join(dirname(fileURLToPath(import.meta.url)), '..', 'README.md'),
      'utf8',
    );
    const section = /^#+ Control channel errors\s*$([\s\S]*?)(?=^#+ )/m.exec(readme)?.[1] ?? '';
    const codes = [...section.matchAll(/^\|\s*`([A-Z][A-Z0-9_]+)`\s*\|/gm)].map(
      (match) => match[1],
    );
    expect(codes.sort()).toEqual(Object.keys(ControlErrors).sort());
  });
});
