import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ServerProcess, startServerProcess } from '@fleet/service';

export const mainJs = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'main.js');

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'fleet-corrosion-'));
}

/** Starts a real agent process on an ephemeral port over `db`. */
export function startAgent(db: string, extra: string[] = []): Promise<ServerProcess> {
  return startServerProcess({
    command: process.execPath,
    args: [mainJs, 'agent', '--db', db, '--api-addr', '127.0.0.1:0', ...extra],
    listeners: ['api'],
    env: { ...process.env, LOG_LEVEL: 'warn' },
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

/** Reads NDJSON lines from a streaming response until `count` lines have arrived. */
export async function readLines(response: Response, count: number): Promise<unknown[]> {
  const reader = response.body!.getReader();
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
