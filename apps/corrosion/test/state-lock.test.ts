import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { ServerProcess } from '@fleet/service';
import { present } from '@fleet/service/invariant';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { mainJs, post, startAgent, tempDir } from './agent.js';

const run = promisify(execFile);

// An agent holds its database's lock (`<db>.lock`) from before it opens the database until it
// exits: a second agent on the same file exits 1 naming the first agent's pid, and so does a
// `corrosion restore` aimed at it; the first agent goes on answering.
describe('the database lock', () => {
  const db = join(tempDir(), 'state.db');
  let agent: ServerProcess;
  afterAll(async () => {
    await agent?.stop();
  });

  it('refuses a second agent and a restore over a database a live agent uses', async () => {
    agent = await startAgent(db);
    const pid = present(agent.child.pid, "the agent's pid");
    const second = startAgent(db);
    onTestFinished(() => second.then((server) => server.stop()).catch(() => undefined));
    await expect(second).rejects.toThrow(new RegExp(`exited \\(1\\)[\\s\\S]*pid ${pid}`));

    const backup = join(tempDir(), 'backup.db');
    const restored = await run(process.execPath, [
      ...[mainJs, 'restore', '--from', backup, '--db', db],
    ]).catch((error: { code: number; stderr: string }) => error);
    expect(restored).toMatchObject({ code: 1, stderr: expect.stringContaining(`pid ${pid}`) });

    const answer = await post(`${agent.urls.api}/v1/queries`, 'SELECT 1');
    expect(answer.status).toBe(200);
  });
});
