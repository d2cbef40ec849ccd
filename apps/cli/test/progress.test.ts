import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { machineLine, type ProgressStream } from '../src/progress.js';

/** A stream that keeps what is written; `isTTY` as a terminal's or a pipe's. */
function captured(isTTY: boolean) {
  const stream = new PassThrough() as PassThrough & ProgressStream;
  stream.isTTY = isTTY;
  let text = '';
  stream.on('data', (chunk) => {
    text += chunk;
  });
  return { stream, text: () => text };
}

// A machine's progress line: on a pipe one plain line when it ends (no frames, no colours); on
// a terminal a spinner, then a green ✔ or red ✖ line; a failure is rethrown.
describe('progress lines', () => {
  it('are one plain line when not on a terminal', async () => {
    const out = captured(false);
    const result = await machineLine(
      'm1',
      async (status) => {
        status('waiting for alive');
        return 7;
      },
      (value) => `m1 healthy (${value})`,
      out.stream,
    );
    expect(result).toBe(7);
    expect(out.text()).toBe('m1 healthy (7)\n');
    const failed = captured(false);
    await expect(
      machineLine(
        'm2',
        async () => {
          throw new Error('failed its check alive\nmore');
        },
        () => 'never',
        failed.stream,
      ),
    ).rejects.toThrow(/failed its check alive/);
    expect(failed.text()).toBe('m2: failed its check alive\n');
  });

  it('spin on a terminal, following the status, and end with a mark', async () => {
    const out = captured(true);
    await machineLine(
      'm1',
      async (status) => {
        status('waiting for alive');
        await new Promise((resolve) => setTimeout(resolve, 120)); // a few frames
      },
      () => 'm1 updated, healthy',
      out.stream,
    );
    // Frames are drawn only when the process's own output is a terminal (nanospinner's rule),
    // which a test run's is not: the first frame and the final mark are what can be seen here.
    // The mark's own colour is nanospinner's, decided by the environment (CI=1 turns it on); the
    // text's is ours, green on a terminal.
    expect(out.text()).toMatch(/m1\n/);
    const green = `${String.fromCharCode(27)}[32m`;
    expect(out.text()).toMatch(new RegExp(`✔.* ${green.replace('[', '\\[')}m1 updated, healthy`));
    const failed = captured(true);
    await expect(
      machineLine(
        'm2',
        () => Promise.reject(new Error('stopped')),
        () => '',
        failed.stream,
      ),
    ).rejects.toThrow('stopped');
    expect(failed.text()).toMatch(/✖.*m2: stopped/);
  });
});
