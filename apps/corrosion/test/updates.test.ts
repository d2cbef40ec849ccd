import { describe, expect, it } from 'vitest';
import { Updates } from '../src/updates.js';

describe('the updates hub', () => {
  it("writes a batch's rows as one chunk of notify lines, integers past 2^53 as their digits, blobs as their bytes", () => {
    const updates = new Updates(() => ['machines', 'apps']);
    const chunks: string[] = [];
    updates.follow('machines', (text) => chunks.push(text) > 0);
    updates.notify([
      { table: 'machines', pk: ['m1'], deleted: false },
      { table: 'apps', pk: ['web'], deleted: false }, // nobody follows apps
      { table: 'machines', pk: [2n ** 60n, 7], deleted: true },
      { table: 'machines', pk: [Buffer.from([1, 2])], deleted: false },
    ]);
    expect(chunks).toEqual([
      '{"notify":["update",["m1"]]}\n' +
        '{"notify":["delete",["1152921504606846976",7]]}\n' +
        '{"notify":["update",[[1,2]]]}\n',
    ]);
  });

  it('drops a follower whose stream refuses a chunk', () => {
    const updates = new Updates(() => ['machines']);
    let offered = 0;
    updates.follow('machines', () => {
      offered++;
      return false;
    });
    updates.notify([{ table: 'machines', pk: ['m1'], deleted: false }]);
    updates.notify([{ table: 'machines', pk: ['m2'], deleted: false }]);
    expect(offered).toBe(1);
  });
});
