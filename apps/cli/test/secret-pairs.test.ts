import { describe, expect, it } from 'vitest';
import { checkSecretName, parseSecretLines, parseSecretPairs } from '../src/secret-pairs.js';

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

// `fleet secrets import < .env`: the same pairs one a line, as `fly secrets import` reads them.
describe('secret lines', () => {
  it('skip blanks and comments, split at the first =, and take """ values of several lines', () => {
    const text =
      '# the app\nDB_URL=postgres://h/db?x=1\n\nKEY="""\n-----BEGIN-----\nabc\n"""\nEMPTY=\r\n';
    expect(parseSecretLines(text)).toEqual({
      DB_URL: 'postgres://h/db?x=1',
      KEY: '-----BEGIN-----\nabc',
      EMPTY: '',
    });
  });

  it('name the line at fault, never its value, and refuse nothing at all', () => {
    expect(() => parseSecretLines('OK=1\nhunter2\n')).toThrow(
      expect.objectContaining({ exitCode: 2, message: 'line 2 is not NAME=VALUE' }),
    );
    expect(() => parseSecretLines('KEY="""\nsecret\n')).toThrow(
      /line 1: KEY's """ is never closed/,
    );
    expect(() => parseSecretLines('\n# nothing\n')).toThrow(/no NAME=VALUE line on stdin/);
  });
});
