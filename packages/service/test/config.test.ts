import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import {
  authorizationMatches,
  parseConfig,
  parseListenAddress,
  UsageError,
  usage,
} from '../src/index.js';

const tempDirs: string[] = [];
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});
const tempDir = () => tempDirs[tempDirs.push(mkdtempSync(join(tmpdir(), 'fleet-config-'))) - 1]!;

const info = { name: 'demo', summary: 'a demo server' };
const spec = {
  listen: { type: 'string', default: '127.0.0.1:0', description: 'where to listen' },
  retries: { type: 'number', default: 3, description: 'how many retries' },
  verbose: { type: 'boolean', default: false, description: 'say more' },
  token: { type: 'string', required: true, description: 'the secret' },
} as const;

describe('parseConfig', () => {
  // Flags beat the config file, which beats the defaults; numbers are parsed.
  it('layers defaults, file and flags', () => {
    const dir = tempDir();
    const file = join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ retries: 7, token: 'from-file' }));
    const config = parseConfig(info, spec, ['--config', file, '--token', 'flag']);
    expect(config).toEqual({ listen: '127.0.0.1:0', retries: 7, verbose: false, token: 'flag' });
  });

  // Every kind of bad input is a UsageError that names the setting.
  it('rejects unknown flags, bad numbers, missing required settings and unknown file keys', () => {
    expect(() => parseConfig(info, spec, ['--nope'])).toThrow(UsageError);
    expect(() => parseConfig(info, spec, ['--token', 't', '--retries', 'x'])).toThrow(/--retries/);
    expect(() => parseConfig(info, spec, [])).toThrow(/--token/);
    const dir = tempDir();
    const file = join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ tokn: 'typo' }));
    expect(() => parseConfig(info, spec, ['--config', file])).toThrow(/unknown setting "tokn"/);
    expect(() => parseConfig(info, spec, ['--config', join(dir, 'missing.json')])).toThrow(
      /cannot read config file/,
    );
  });

  // --help prints every flag with its default and asks the caller to exit.
  it('prints help with defaults', () => {
    const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    expect(parseConfig(info, spec, ['--help'])).toBeUndefined();
    write.mockRestore();
    const text = usage(info, spec);
    expect(text).toContain('--retries <number>');
    expect(text).toContain('(default: 3)');
    expect(text).toContain('(required)');
  });
});

describe('parseListenAddress', () => {
  // host:port and [v6]:port parse; anything else is a usage error.
  it('parses and rejects', () => {
    expect(parseListenAddress('127.0.0.1:0')).toEqual({ host: '127.0.0.1', port: 0 });
    expect(parseListenAddress('[::1]:8080')).toEqual({ host: '::1', port: 8080 });
    expect(() => parseListenAddress('8080')).toThrow(UsageError);
    expect(() => parseListenAddress('h:70000')).toThrow(UsageError);
  });
});

describe('authorizationMatches', () => {
  // Only the named schemes count, the scheme is case-insensitive, the token must match exactly.
  it('accepts the token under the allowed schemes only', () => {
    expect(authorizationMatches('Bearer s3cret', 's3cret')).toBe(true);
    expect(authorizationMatches('bearer s3cret', 's3cret')).toBe(true);
    expect(authorizationMatches('FlyV1 s3cret', 's3cret')).toBe(false);
    expect(authorizationMatches('FlyV1 s3cret', 's3cret', ['Bearer', 'FlyV1'])).toBe(true);
    expect(authorizationMatches('Bearer s3cre', 's3cret')).toBe(false);
    expect(authorizationMatches(undefined, 's3cret')).toBe(false);
  });
});
