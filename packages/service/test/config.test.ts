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
  retries: { type: 'number', default: 3, min: 0, max: 10, description: 'how many retries' },
  ratio: { type: 'number', default: 0.5, min: 0, max: 1, integer: false, description: 'a share' },
  mode: { type: 'string', default: 'edge', choices: ['edge', 'backhaul'], description: 'role' },
  upstream: { type: 'string', format: 'url', default: 'http://127.0.0.1:1', description: 'an API' },
  'tls-listen': { type: 'string', format: 'address', default: '', description: 'off when empty' },
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
    expect(config).toEqual({
      listen: '127.0.0.1:0',
      retries: 7,
      ratio: 0.5,
      mode: 'edge',
      upstream: 'http://127.0.0.1:1',
      'tls-listen': '',
      verbose: false,
      token: 'flag',
    });
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

  // Numbers out of their range, fractions where whole numbers are asked, and strings that are not
  // one of the choices are refused, from flags and from the file alike, naming the flag.
  it('checks ranges and choices, naming the flag', () => {
    const parse = (...argv: string[]) => parseConfig(info, spec, ['--token', 't', ...argv]);
    expect(parse('--retries', '10', '--ratio', '0.25', '--mode', 'backhaul')).toMatchObject({
      retries: 10,
      ratio: 0.25,
      mode: 'backhaul',
    });
    expect(() => parse('--retries', '11')).toThrow(
      new UsageError('--retries must be a whole number from 0 to 10, got "11"'),
    );
    expect(() => parse('--retries=-1')).toThrow(/--retries must be a whole number from 0/);
    expect(() => parse('--retries', '2.5')).toThrow(/--retries must be a whole number/);
    expect(() => parse('--ratio', '1.5')).toThrow(/--ratio must be a number from 0 to 1/);
    expect(() => parse('--mode', 'core')).toThrow(
      new UsageError('--mode must be one of edge, backhaul, got "core"'),
    );
    const dir = tempDir();
    const file = join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ retries: 1e9 }));
    expect(() => parse('--config', file)).toThrow(/--retries must be a whole number from 0 to 10/);
    writeFileSync(file, JSON.stringify({ mode: 'core' }));
    expect(() => parse('--config', file)).toThrow(/--mode must be one of edge, backhaul/);
  });

  // A URL or address setting is checked at start like a range: a careless value names the flag
  // instead of starting a server that retries a URL it can never reach.
  it('checks URL and address formats, naming the flag', () => {
    const parse = (...argv: string[]) => parseConfig(info, spec, ['--token', 't', ...argv]);
    expect(parse()).toMatchObject({ upstream: 'http://127.0.0.1:1', 'tls-listen': '' });
    expect(
      parse('--upstream', 'https://corrosion.internal:8787/', '--tls-listen', '[::1]:0'),
    ).toMatchObject({ upstream: 'https://corrosion.internal:8787/', 'tls-listen': '[::1]:0' });
    for (const bad of ['notaurl', '127.0.0.1:8787', 'ftp://host/', 'http://', ''])
      expect(() => parse('--upstream', bad), bad).toThrow(
        new UsageError(`--upstream must be an http:// or https:// URL, got ${JSON.stringify(bad)}`),
      );
    for (const bad of ['nonsense', '8080', 'host:70000', 'http://host:1'])
      expect(() => parse('--tls-listen', bad), bad).toThrow(
        new UsageError(`--tls-listen must be a host:port address, got ${JSON.stringify(bad)}`),
      );
    const file = join(tempDir(), 'c.json');
    writeFileSync(file, JSON.stringify({ upstream: 'localhost' }));
    expect(() => parse('--config', file)).toThrow(/--upstream must be an http/);
    expect(usage(info, spec)).toContain('--upstream <url>');
    expect(usage(info, spec)).toContain('--tls-listen <host:port>');
  });

  // --help prints every flag with its default, range or choices, and asks the caller to exit.
  it('prints help with defaults, ranges and choices', () => {
    const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    expect(parseConfig(info, spec, ['--help'])).toBeUndefined();
    write.mockRestore();
    const text = usage(info, spec);
    expect(text).toContain('--retries <number>');
    expect(text).toContain('how many retries (0 to 10, whole; default: 3)');
    expect(text).toContain('a share (0 to 1; default: 0.5)');
    expect(text).toContain('--mode <edge|backhaul>');
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
