import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { nodeProjectAbove } from '../src/node-project-above.js';

describe('nodeProjectAbove', () => {
  const top = mkdtempSync(join(tmpdir(), 'node-project-'));
  afterAll(() => rmSync(top, { recursive: true, force: true }));

  it('names the nearest package.json or node_modules at or above a folder, or none', () => {
    const deep = join(top, 'checkout', '.fleet', 'local-1', 'flyd');
    mkdirSync(deep, { recursive: true });
    expect(nodeProjectAbove(deep)).toBeUndefined(); // the temporary folder is no project
    writeFileSync(join(top, 'checkout', 'package.json'), '{"type": "module"}\n');
    expect(nodeProjectAbove(deep)).toBe(join(top, 'checkout', 'package.json'));
    mkdirSync(join(top, 'checkout', '.fleet', 'node_modules'));
    expect(nodeProjectAbove(deep)).toBe(join(top, 'checkout', '.fleet', 'node_modules'));
    expect(nodeProjectAbove(join(top, 'checkout'))).toBe(join(top, 'checkout', 'package.json'));
  });
});
