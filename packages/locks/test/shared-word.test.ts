import { present } from '@fleet/service/invariant';
import { describe, expect, it } from 'vitest';
import {
  abandonWrite,
  ONE_READER,
  PARKED_BIT,
  readerCount,
  tryDrain,
  tryRead,
  tryWriterBit,
  unlockRead,
  unlockWrite,
  WRITER_BIT,
  WRITER_PARKED_BIT,
} from '../src/shared-word.js';

const fresh = () => new Int32Array(new SharedArrayBuffer(4));

// parking_lot #465 (seed 001), step by step on one word: a writer whose timeout fires while the
// last reader leaves and wakes it must leave the word consistent in either order.
describe('the shared lock word', () => {
  it('a reader leaving before the timed-out writer gives up: the writer takes the lock', () => {
    const word = fresh();
    expect(tryRead(word)).toBe(true);
    expect(tryWriterBit(word)).toBe(true);
    expect(tryDrain(word)).toBe(ONE_READER | WRITER_BIT | WRITER_PARKED_BIT); // writer parks
    unlockRead(word); // the last reader leaves, clears WRITER_PARKED_BIT and wakes the writer...
    expect(word[0]).toBe(WRITER_BIT);
    expect(abandonWrite(word)).toBe(true); // ...whose timeout fires now: the lock is simply taken
    unlockWrite(word);
    expect(word[0]).toBe(0);
  });

  it('a writer giving up before the last reader leaves clears its bits exactly once', () => {
    const word = fresh();
    expect(tryRead(word)).toBe(true);
    expect(tryWriterBit(word)).toBe(true);
    tryDrain(word);
    expect(abandonWrite(word)).toBe(false);
    expect(word[0]).toBe(ONE_READER);
    unlockRead(word); // must not clear the writer's bits a second time
    expect(word[0]).toBe(0);
  });

  it('readers parked behind a writer that gives up are let in', () => {
    const word = fresh();
    expect(tryRead(word)).toBe(true);
    expect(tryWriterBit(word)).toBe(true);
    tryDrain(word);
    expect(tryRead(word)).toBe(ONE_READER | WRITER_BIT | WRITER_PARKED_BIT | PARKED_BIT); // parks
    expect(abandonWrite(word)).toBe(false);
    expect(tryRead(word)).toBe(true);
    expect(readerCount(present(word[0], 'the word'))).toBe(2);
    unlockRead(word);
    unlockRead(word);
    expect(word[0]).toBe(0);
  });

  it('a second writer parks behind the first and gets the lock after it', () => {
    const word = fresh();
    expect(tryWriterBit(word)).toBe(true);
    expect(tryDrain(word)).toBe(true);
    expect(tryWriterBit(word)).toBe(WRITER_BIT | PARKED_BIT);
    unlockWrite(word);
    expect(word[0]).toBe(0);
    expect(tryWriterBit(word)).toBe(true);
    expect(tryDrain(word)).toBe(true);
    unlockWrite(word);
    expect(word[0]).toBe(0);
  });
});
