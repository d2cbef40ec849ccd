import { describe, expect, it } from 'vitest';
import { render } from '../src/control/render.js';

describe("proxyctl's tables", () => {
  it('catalog: every column starts where its heading does, with 14-character machine ids', () => {
    const machine = (id: string, state: string) => ({
      id,
      state,
      region: 'ams',
      hostId: 'worker-ams-1',
      load: 3,
      remoteLoad: 0,
      critical: null,
      services: [{ internalPort: 8080, band: 0 }],
    });
    const text = render('catalog', {
      app: 'web',
      machines: [machine('ddd736704c47e8', 'started'), machine('m2', 'stopped')],
      route: { kind: 'ok', candidates: [{ machine: 'ddd736704c47e8', band: 0 }] },
    });
    const [, heading = '', first = '', second = ''] = text.split('\n');
    for (const [title, value] of [
      ['STATE', 'started'],
      ['HOST', 'worker-ams-1'],
      ['HEALTH', 'ok'],
    ] as const) {
      expect(first.indexOf(value), title).toBe(heading.indexOf(title));
      expect(second.indexOf(title === 'STATE' ? 'stopped' : value), title).toBe(
        heading.indexOf(title),
      );
    }
  });

  it('locks: how long ago, in whole milliseconds', () => {
    // Lock times are read from performance.timeOrigin + performance.now(): fractions of a ms.
    const released = { mode: 'write', label: 'load-app', context: { app: 'web' } };
    const text = render('locks', {
      catalog: {
        holders: [],
        queued: [],
        lastWriter: { ...released, sinceMs: Date.now() - 90.25, releasedMs: Date.now() - 40.5 },
      },
    });
    expect(text).toMatch(/^last writer: write load-app app=web released \d+ ms ago$/m);
  });
});
