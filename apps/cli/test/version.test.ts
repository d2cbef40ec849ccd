import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const bin = new URL('../bin/fleet.js', import.meta.url).pathname;
const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

function fleet(args: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [bin, ...args], (error, stdout) =>
      resolve({ code: error ? (error.code as number) : 0, stdout }),
    );
    child.stdin?.end();
  });
}

describe('fleet version', () => {
  it('prints the release and platform, as `fly version` does, from the command and the flags', async () => {
    const line = `fleet v${version} ${process.platform}/${process.arch} node ${process.version}\n`;
    for (const args of [['version'], ['--version'], ['-v']])
      expect(await fleet(args), args.join(' ')).toEqual({ code: 0, stdout: line });
  });
});
