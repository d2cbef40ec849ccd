import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CliError } from '../src/errors.js';
import { scanFolder } from '../src/launch-scan.js';
import { folderPerTest } from './temp-folder.js';

describe('what fleet launch runs for a folder without image.json', () => {
  const folder = folderPerTest('fleet-cli-scan-');
  const write = (file: string, text: string) => writeFileSync(join(folder.path, file), text);
  const cmdOf = () => JSON.parse(scanFolder(folder.path)?.text ?? 'null')?.cmd;

  it("runs package.json's start script as flyctl does, else its main file", () => {
    write('server.js', '');
    write('package.json', JSON.stringify({ main: 'server.js', scripts: { start: 'node .' } }));
    expect(cmdOf()).toEqual(['npm', 'run', 'start']);
    expect(scanFolder(folder.path)?.found).toBe("a Node app (package.json's start script)");
    write('package.json', JSON.stringify({ main: 'server.js', scripts: { test: 'x' } }));
    expect(cmdOf()).toEqual(['node', 'server.js']);
  });

  it('warns when package.json names dependencies that are not installed in the folder', () => {
    write(
      'package.json',
      JSON.stringify({ scripts: { start: 'node .' }, dependencies: { a: '1' } }),
    );
    expect(scanFolder(folder.path)?.warning).toMatch(/has no node_modules: .*npm install/);
    mkdirSync(join(folder.path, 'node_modules'));
    expect(scanFolder(folder.path)?.warning).toBeUndefined();
  });

  it("keeps the folder's own image.json", () => {
    write('image.json', '{"cmd": ["./run"]}');
    write('package.json', JSON.stringify({ scripts: { start: 'node .' } }));
    expect(scanFolder(folder.path)).toBeUndefined();
  });

  it('refuses a folder that says nothing of how to run, naming what it looked for', () => {
    expect(() => scanFolder(folder.path)).toThrow(
      /no image\.json .*no package\.json with a start script/,
    );
    write('package.json', JSON.stringify({ main: 'missing.js' }));
    expect(() => scanFolder(folder.path)).toThrow(CliError);
    write('package.json', '{ not json');
    expect(() => scanFolder(folder.path)).toThrow(/package\.json is not JSON/);
  });
});
