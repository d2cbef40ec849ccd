import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CliError } from '../src/errors.js';
import { scanFolder } from '../src/launch-scan.js';

describe('what fleet launch runs for a folder without image.json', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'fleet-cli-scan-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const write = (file: string, text: string) => writeFileSync(join(dir, file), text);
  const cmdOf = () => JSON.parse(scanFolder(dir)?.text ?? 'null')?.cmd;

  it("runs package.json's start script as flyctl does, else its main file", () => {
    write('server.js', '');
    write('package.json', JSON.stringify({ main: 'server.js', scripts: { start: 'node .' } }));
    expect(cmdOf()).toEqual(['npm', 'run', 'start']);
    expect(scanFolder(dir)?.found).toBe("a Node app (package.json's start script)");
    write('package.json', JSON.stringify({ main: 'server.js', scripts: { test: 'x' } }));
    expect(cmdOf()).toEqual(['node', 'server.js']);
  });

  it('warns when package.json names dependencies that are not installed in the folder', () => {
    write(
      'package.json',
      JSON.stringify({ scripts: { start: 'node .' }, dependencies: { a: '1' } }),
    );
    expect(scanFolder(dir)?.warning).toMatch(/has no node_modules: .*npm install/);
    mkdirSync(join(dir, 'node_modules'));
    expect(scanFolder(dir)?.warning).toBeUndefined();
  });

  it("keeps the folder's own image.json", () => {
    write('image.json', '{"cmd": ["./run"]}');
    write('package.json', JSON.stringify({ scripts: { start: 'node .' } }));
    expect(scanFolder(dir)).toBeUndefined();
  });

  it('refuses a folder that says nothing of how to run, naming what it looked for', () => {
    expect(() => scanFolder(dir)).toThrow(/no image\.json .*no package\.json with a start script/);
    write('package.json', JSON.stringify({ main: 'missing.js' }));
    expect(() => scanFolder(dir)).toThrow(CliError);
    write('package.json', '{ not json');
    expect(() => scanFolder(dir)).toThrow(/package\.json is not JSON/);
  });
});
