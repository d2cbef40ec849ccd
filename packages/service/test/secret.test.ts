import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readSecret, UsageError } from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'fleet-secret-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Tokens come from a file or the environment, never from a flag's value (which `ps` shows); the
// variable is taken out of the environment so that nothing the server starts inherits it.
describe('readSecret', () => {
  it('reads the file a flag names, without its trailing newline', () => {
    const file = join(dir, 'token');
    writeFileSync(file, 's3cret\n', { mode: 0o600 });
    expect(readSecret({ fileFlag: 'token-file', file, variable: 'TEST_TOKEN_A' })).toBe('s3cret');
  });

  it('takes the variable when no file is named, and removes it from the environment', () => {
    process.env.TEST_TOKEN_B = 'from-env';
    expect(readSecret({ fileFlag: 'token-file', file: undefined, variable: 'TEST_TOKEN_B' })).toBe(
      'from-env',
    );
    expect(process.env.TEST_TOKEN_B).toBeUndefined();
  });

  it('says both ways to give a required secret that is missing', () => {
    const missing = () =>
      readSecret({
        fileFlag: 'token-file',
        file: undefined,
        variable: 'TEST_TOKEN_C',
        required: true,
      });
    expect(missing).toThrow(UsageError);
    expect(missing).toThrow(/TEST_TOKEN_C.*--token-file/);
  });

  it('refuses an unreadable or empty file, naming the flag', () => {
    const empty = join(dir, 'empty');
    writeFileSync(empty, '');
    expect(() =>
      readSecret({ fileFlag: 'token-file', file: empty, variable: 'TEST_TOKEN_D' }),
    ).toThrow(/--token-file .* is empty/);
    expect(() =>
      readSecret({ fileFlag: 'token-file', file: join(dir, 'nope'), variable: 'TEST_TOKEN_D' }),
    ).toThrow(/cannot read --token-file/);
  });
});
