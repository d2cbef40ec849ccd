import type { Server } from 'node:http';
import { present } from '@fleet/service/invariant';
import { until } from '@fleet/service/vitest-until';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Edge, startEdge, startMachine } from './relay-fixture.js';

const apps = Array.from({ length: 40 }, (_, index) => `app${index}`);

// Seed 004: when corrosion stops answering, the lazy catalog's loads must not pile up. Requests
// for apps not yet loaded get a fast 503 at the load deadline (never an unbounded wait), apps
// already loaded keep routing, the proxy's memory stays flat, and everything recovers by itself
// once corrosion answers again. (A load timing out here once crashed the proxy: a discarded
// route() promise rejected with nothing to handle it.)
describe('fly-proxy while corrosion does not answer', () => {
  let edge: Edge;
  let machine: Server;
  let corrosionPid: number;

  beforeAll(async () => {
    const started = await startMachine('m');
    machine = started.server;
    edge = await startEdge(
      apps.map((app) => ({ id: `${app}-m`, app, addr: started.addr, region: 'ams' })),
      { region: 'ams' },
    );
    corrosionPid = edge.corrosion.child.pid ?? 0;
    await edge.routable('app0.fleet.test');
  });

  afterAll(async () => {
    if (corrosionPid > 0) {
      try {
        process.kill(corrosionPid, 'SIGCONT');
      } catch {}
    }
    await edge?.stop();
    await new Promise((resolve) => machine?.close(resolve));
  });

  const get = async (app: string) => {
    const started = Date.now();
    const answer = await request(edge.urls.proxy, {
      headers: { host: `${app}.fleet.test` },
      headersTimeout: 30_000,
    });
    const body = await answer.body.text();
    return { status: answer.statusCode, body, ms: Date.now() - started };
  };

  it('answers fast 503s for unloaded apps, keeps loaded ones routing, and recovers', async () => {
    expect(corrosionPid).toBeGreaterThan(0);
    const rssBefore = await rss();
    process.kill(corrosionPid, 'SIGSTOP');
    try {
      const answers = await Promise.all(apps.slice(1).map((app) => get(app)));
      for (const answer of answers) {
        expect(answer.status).toBe(503);
        expect(answer.body).toMatch(/CATALOG_ERR_LOAD_(TIMEOUT|SHED)/);
      }
      // Bounded by the catalog's load deadline (2 s by default), with room for a busy machine.
      expect(Math.max(...answers.map((answer) => answer.ms))).toBeLessThan(15_000);
      expect((await get('app0')).status).toBe(200); // held already: no corrosion needed
      expect((await rss()) - rssBefore).toBeLessThan(64 * 1024 * 1024);
    } finally {
      process.kill(corrosionPid, 'SIGCONT');
    }
    for (const app of apps.slice(1, 6)) {
      const answer = await until(
        `${app} served`,
        () => get(app),
        (reply) => reply.status === 200,
      );
      expect(answer.status).toBe(200);
    }
    // Every timed-out load was answered, none escaped as an unhandled rejection.
    const metrics = await (await request(`${edge.proxy.urls.admin}/metrics`)).body.text();
    expect(metrics).not.toMatch(/proxy_unhandled_rejections_total\{[^}]*\} [1-9]/);
  });

  /** The proxy process's resident memory, from /proc. */
  async function rss(): Promise<number> {
    const { readFileSync } = await import('node:fs');
    const status = readFileSync(`/proc/${edge.proxy.child.pid}/status`, 'utf8');
    return Number(present(/VmRSS:\s+(\d+) kB/.exec(status), 'VmRSS in /proc')[1]) * 1024;
  }
});
