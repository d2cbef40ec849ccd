import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const mainJs = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'main.js');

// A careless flag stops flyd at start with exit status 2 and a message naming the flag, before
// it touches its data directory: ranges, whole numbers, choices, addresses and URLs alike.
describe('flyd flags', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-flyd-flags-'));
  const dataDir = join(dir, 'flyd');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const run = (...flags: string[]) =>
    spawnSync(
      process.execPath,
      [mainJs, '--data-dir', dataDir, '--corrosion-url', 'http://127.0.0.1:1'].concat(flags),
      // The token comes from the environment, never a flag.
      { encoding: 'utf8', timeout: 30_000, env: { ...process.env, FLYD_TOKEN: 't' } },
    );

  it('refuses each bad value naming the flag, and creates nothing', () => {
    const cases: [string[], string][] = [
      [['--cpus', '1.5'], '--cpus must be a whole number from 1 to 1024, got "1.5"'],
      [['--busy-wait-ms=-1'], '--busy-wait-ms must be a whole number from 0 to 600000'],
      [['--busy-waiters-max', '5000'], '--busy-waiters-max must be a whole number from 0 to 1024'],
      [['--memory-mb', 'lots'], '--memory-mb must be a whole number from 256'],
      [['--machine-limits', 'maybe'], '--machine-limits must be one of cgroups, off, got "maybe"'],
      [['--listen', 'nonsense'], '--listen must be a host:port address, got "nonsense"'],
      [['--log-sink', '9000'], '--log-sink must be a host:port address, got "9000"'],
      [['--corrosion-url', 'notaurl'], '--corrosion-url must be an http:// or https:// URL'],
    ];
    for (const [flags, message] of cases) {
      const refused = run(...flags);
      expect(refused.status, `${flags.join(' ')}: ${refused.stderr}`).toBe(2);
      expect(refused.stderr).toContain(`error: ${message}`);
    }
    expect(existsSync(dataDir)).toBe(false);
  });

  it('shows each range, choice and format in --help', () => {
    const help = run('--help');
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('--busy-wait-ms <number>');
    expect(help.stdout).toContain('(0 to 600000, whole; default: 10000)');
    expect(help.stdout).toContain('--machine-limits <cgroups|off>');
    expect(help.stdout).toContain('--listen <host:port>');
    expect(help.stdout).toContain('--corrosion-url <url>');
  });
});
