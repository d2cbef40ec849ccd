import { describe, expect, it } from 'vitest';
import { checkSecretName, parseSecretPairs } from '../src/secret-pairs.js';

// `fleet secrets set NAME=VALUE...` splits at the first `=` (values may hold `=` or be empty)
// and refuses, as a usage error that never repeats a value, an argument without `=` or a name
// that cannot be an environment variable.
describe('secret pairs', () => {
  it('split at the first =', () => {
    expect(parseSecretPairs(['DB_URL=postgres://u:p@h/db?x=1', 'EMPTY=', '_T2=a=b'])).toEqual({
      DB_URL: 'postgres://u:p@h/db?x=1',
      EMPTY: '',
      _T2: 'a=b',
    });
  });

  it('refuse an argument without = without showing it, and bad names', () => {
    expect(() => parseSecretPairs(['OK=1', 'hunter2'])).toThrow(
      expect.objectContaining({ exitCode: 2, message: 'argument 2 is not NAME=VALUE' }),
    );
    for (const name of ['1ABC', 'A-B', '', 'A B'])
      expect(() => parseSecretPairs([`${name}=v`]), name).toThrow(
        expect.objectContaining({ exitCode: 2 }),
      );
    expect(() => checkSecretName('X'.repeat(257))).toThrow(
      expect.objectContaining({ exitCode: 2 }),
    );
    expect(checkSecretName('API_TOKEN')).toBe('API_TOKEN');
  });
});
