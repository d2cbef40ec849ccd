import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ServerProcess, startServerProcess } from '@fleet/service';
import { present } from '@fleet/service/invariant';
import { afterAll } from 'vitest';

export const mainJs = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'main.js');

const tempDirs: string[] = [];
// Registered on the test file that imports this module (vitest loads it afresh for each file):
// the file's temporary folders are removed when it ends, whether its tests passed or not. Its
// own afterAll/afterEach hooks (which stop the agents) run before this one.
afterAll(() => {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A new temporary folder, removed when the test file ends. */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-corrosion-'));
  tempDirs.push(dir);
  return dir;
}

/**
 * Starts a real agent process on an ephemeral port over `db`; `env` adds variables (its token
 * goes there as CORROSION_TOKEN, never on the command line).
 */
export function startAgent(
  db: string,
  extra: string[] = [],
  env: Record<string, string> = {},
): Promise<ServerProcess> {
  return startServerProcess({
    command: process.execPath,
    args: [mainJs, 'agent', '--db', db, '--api-addr', '127.0.0.1:0', ...extra],
    listeners: ['api'],
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
  });
}

export async function post(url: string, body: unknown, token?: string): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify(body),
  });
}

/** Every NDJSON event of a whole answer (one that ends). */
export async function ndjson(response: Response): Promise<Record<string, unknown>[]> {
  return (await response.text())
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** Reads NDJSON lines from a streaming response until `count` lines have arrived. */
export async function readLines(response: Response, count: number): Promise<unknown[]> {
  const reader = present(response.body, 'the response body').getReader();
  const decoder = new TextDecoder();
  let text = '';
  while (text.split('\n').filter(Boolean).length < count) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value);
  }
  await reader.cancel();
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line));
}
