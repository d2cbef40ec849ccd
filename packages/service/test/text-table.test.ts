import { describe, expect, it } from 'vitest';
import { alignedRows } from '../src/text-table.js';

describe('alignedRows', () => {
  it('pads every column but the last to its widest cell', () => {
    expect(
      alignedRows([
        ['MACHINE', 'STATE', 'HEALTH'],
        ['ddd736704c47e8', 'started', 'ok'],
        ['m2', 'stopped', 'critical: http'],
      ]),
    ).toEqual([
      'MACHINE         STATE    HEALTH',
      'ddd736704c47e8  started  ok',
      'm2              stopped  critical: http',
    ]);
    expect(alignedRows([])).toEqual([]);
  });
});
