import { describe, expect, it } from 'vitest';
import { InvariantError, invariant, present } from '../src/invariant.js';

describe('invariants', () => {
  it('pass what holds through, narrowed', () => {
    const found: number | undefined = new Map([['a', 0]]).get('a');
    expect(present(found, 'the entry of a')).toBe(0); // 0 is present: only null and undefined are not
    expect(present('', 'an empty name')).toBe('');
    const value: string | null = 'x';
    invariant(value !== null, 'value is set');
    expect(value.length).toBe(1);
  });

  it('throw an InvariantError with its code and what broke', () => {
    expect(() => present(undefined, 'the lock of app a')).toThrow(
      'invariant broken: the lock of app a is missing',
    );
    expect(() => present(null, 'x')).toThrow(InvariantError);
    try {
      invariant(1 > 2, 'one is greater than two');
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(InvariantError);
      expect((error as InvariantError).code).toBe('FLEET_ERR_INVARIANT');
      expect((error as Error).message).toBe('invariant broken: one is greater than two');
    }
  });
});
