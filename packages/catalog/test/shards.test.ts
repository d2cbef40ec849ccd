import { present } from '@fleet/service/invariant';
import { describe, expect, it, vi } from 'vitest';
import { shardIndex } from '../src/shard.js';
import { catalogWith, change, machineCells } from './fixtures.js';

// A write that holds one app's shard (an async closure here) leaves every other shard serving
// at once, without even a promise; the held app's readers wait for the writer, then see its
// change.
describe('sharding', () => {
  it('a writer holding one shard never blocks reads of an app in another shard', async () => {
    const shards = 16;
    const other = present(
      ['b', 'c', 'd', 'e', 'f'].find((app) => shardIndex(app, shards) !== shardIndex('a', shards)),
      'an app in another shard',
    );
    const catalog = await catalogWith(
      [
        { id: 'm-a', app: 'a' },
        { id: 'm-other', app: other },
      ],
      { shards },
    );
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const holding = catalog.writeApp('a', 'test-hold', () => gate);
    expect(catalog.locks().find((lock) => lock.writer)?.writer).toMatchObject({
      label: 'test-hold',
      context: { app: 'a' },
    });
    const otherDecision = catalog.route(other);
    expect(otherDecision).not.toBeInstanceOf(Promise); // answered at once, no lock wait
    expect(otherDecision).toMatchObject({ kind: 'ok', machine: { id: 'm-other' } });
    // a change to the other app applies while 'a' is held
    await catalog.apply(
      'machines',
      change('update', machineCells({ id: 'm-other', app: other, state: 'stopped' }).machine),
    );
    expect(catalog.route(other)).toMatchObject({ kind: 'no-machine' });
    // readers and writers of 'a' wait for the holder
    const held = catalog.route('a');
    expect(held).toBeInstanceOf(Promise);
    const update = catalog.apply(
      'machines',
      change('update', machineCells({ id: 'm-a', app: 'a', state: 'stopped' }).machine),
    );
    let answered = false;
    void (held as Promise<unknown>).then(() => {
      answered = true;
    });
    // both wait in the holder's queue, the read first (FIFO), while it holds
    await vi.waitFor(() => {
      const shard = catalog.locks().find((lock) => lock.writer?.label === 'test-hold');
      expect(shard?.queued.map((entry) => entry.mode)).toEqual(['read', 'write']);
    });
    expect(answered).toBe(false);
    release();
    await holding;
    expect(await held).toMatchObject({ kind: 'ok' }); // granted before the queued update
    await update;
    expect(catalog.route('a')).toMatchObject({ kind: 'no-machine' });
  });

  it('spreads apps over every shard', () => {
    const used = new Set(Array.from({ length: 1_000 }, (_, i) => shardIndex(`app-${i}`, 16)));
    expect(used.size).toBe(16);
  });
});
