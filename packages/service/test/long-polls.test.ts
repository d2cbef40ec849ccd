import fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { HttpError } from '../src/errors.js';
import { longPolls } from '../src/long-polls.js';

describe('longPolls', () => {
  it("ends a poll still open when the server closes, with the server's shutting-down error", async () => {
    const app = fastify();
    const during = longPolls(app, () => new HttpError(503, 'TEST_SHUTTING_DOWN', 'closing'));
    let started!: () => void;
    const running = new Promise<void>((resolve) => {
      started = resolve;
    });
    // A poll that fails its own way once cut (as a call to another server does): the cut wins.
    const poll = during(
      (signal) =>
        new Promise((_, reject) => {
          started();
          signal.addEventListener('abort', () => reject(new Error('the call was cut')));
        }),
    );
    await running;
    await app.close();
    await expect(poll).rejects.toMatchObject({ statusCode: 503, code: 'TEST_SHUTTING_DOWN' });
  });

  it('answers what a poll resolves or fails with while the server is open', async () => {
    const app = fastify();
    const during = longPolls(app, () => new Error('closing'));
    expect(await during(async () => 'reached')).toBe('reached');
    await expect(during(async () => Promise.reject(new Error('timed out')))).rejects.toThrow(
      'timed out',
    );
    await app.close();
  });
});
