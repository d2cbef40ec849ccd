import { present } from '@fleet/service/invariant';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Fleet, operatorToken, startFleet } from './fleet.js';

interface FollowedLine {
  timestamp: string;
  message: string;
  level: string;
  instance: string;
  region: string;
  meta: { app: string; stream: string };
}

/** A machine printing `<tag> <n>` on stdout every 50 ms and `<tag> oops` on stderr once. */
const talker = (tag: string) => ({
  image: 'hello',
  init: {
    exec: [
      'node',
      '-e',
      `console.error('${tag} oops'); let n = 0; setInterval(() => console.log('${tag} ' + n++), 50);`,
    ],
  },
});

/** Reads NDJSON lines from `url` until `enough` says so or the deadline passes; then hangs up. */
async function follow(
  url: string,
  enough: (lines: FollowedLine[]) => boolean,
): Promise<FollowedLine[]> {
  const controller = new AbortController();
  const deadline = setTimeout(() => controller.abort(), 30_000);
  const lines: FollowedLine[] = [];
  try {
    const response = await fetch(url, {
      headers: { authorization: `Bearer ${operatorToken}` },
      signal: controller.signal,
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('application/x-ndjson');
    const reader = present(response.body, 'response.body')
      .pipeThrough(new TextDecoderStream())
      .getReader();
    let pending = '';
    while (!enough(lines)) {
      const { value, done } = await reader.read();
      if (done) break;
      pending += value;
      const complete = pending.split('\n');
      pending = present(complete.pop(), 'complete.pop()');
      for (const text of complete) lines.push(JSON.parse(text) as FollowedLine);
    }
  } finally {
    clearTimeout(deadline);
    controller.abort();
  }
  return lines;
}

// `fleet logs` reads these: one app's machines on two workers in two regions, their lines
// gathered by flaps from both flyds, each naming its machine and region.
describe("an app's logs through the Machines API", () => {
  let fleet: Fleet;
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    fleet = await startFleet({
      workers: [
        { hostId: 'w-ams', region: 'ams' },
        { hostId: 'w-lhr', region: 'lhr' },
      ],
    });
    expect(
      (await fleet.call('POST', '/v1/apps', { app_name: 'chatter', org_slug: 'personal' })).status,
    ).toBe(201);
    for (const region of ['ams', 'lhr']) {
      const created = await fleet.call('POST', '/v1/apps/chatter/machines', {
        region,
        config: talker(region),
      });
      expect(created.status, JSON.stringify(created.body)).toBe(200);
      ids[region] = created.body.id;
    }
  }, 120_000);
  afterAll(async () => {
    await fleet?.stop();
  });

  it('follows the lines of every machine on every worker as NDJSON', async () => {
    const lines = await follow(`${fleet.api}/v1/apps/chatter/logs?follow=true`, (seen) =>
      ['ams', 'lhr'].every((region) => seen.filter((line) => line.region === region).length >= 5),
    );
    for (const region of ['ams', 'lhr']) {
      const mine = lines.filter((line) => line.instance === ids[region]);
      expect(mine.length).toBeGreaterThanOrEqual(5);
      expect(mine.every((line) => line.region === region && line.meta.app === 'chatter')).toBe(
        true,
      );
      expect(mine).toContainEqual(
        expect.objectContaining({ message: `${region} oops`, level: 'error' }),
      );
      // In order, none lost, per machine.
      const numbers = mine
        .filter((line) => line.meta.stream === 'stdout')
        .map((line) => Number(line.message.split(' ')[1]));
      expect(numbers).toEqual(numbers.map((_, index) => present(numbers[0], 'numbers[0]') + index));
    }
  });

  it('keeps to one region, or one machine, when asked', async () => {
    const lhr = await follow(
      `${fleet.api}/v1/apps/chatter/logs?follow=true&region=lhr`,
      (seen) => seen.length >= 10,
    );
    expect(lhr.every((line) => line.region === 'lhr')).toBe(true);
    const one = await follow(
      `${fleet.api}/v1/apps/chatter/machines/${ids.ams}/logs?follow=true`,
      (seen) => seen.length >= 10,
    );
    expect(one.every((line) => line.instance === ids.ams)).toBe(true);
  });

  it('pages through both workers with next_token, never repeating a line', async () => {
    // The machines print every 50 ms: wait until two pages' worth are kept.
    for (let attempt = 0; attempt < 200; attempt++) {
      const kept = await fleet.call('GET', '/v1/apps/chatter/logs?limit=1000');
      if (kept.body.data.length >= 100) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const first = await fleet.call('GET', '/v1/apps/chatter/logs?limit=50');
    expect(first.status).toBe(200);
    expect(first.body.data).toHaveLength(50);
    const second = await fleet.call(
      'GET',
      `/v1/apps/chatter/logs?limit=50&next_token=${first.body.meta.next_token}`,
    );
    const seen = new Set(first.body.data.map((entry: { id: string }) => entry.id));
    expect(second.body.data.length).toBeGreaterThan(0);
    for (const entry of second.body.data) expect(seen.has(entry.id)).toBe(false);
    const everything = await fleet.call('GET', '/v1/apps/chatter/logs?limit=1000');
    const regions = new Set(
      everything.body.data.map(
        (entry: { attributes: { region: string } }) => entry.attributes.region,
      ),
    );
    expect(regions).toEqual(new Set(['ams', 'lhr']));
  });

  it('names the problem with a bad query', async () => {
    const bad = await fleet.call('GET', '/v1/apps/chatter/logs?follow=maybe');
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/follow/);
    expect((await fleet.call('GET', '/v1/apps/nope/logs')).status).toBe(404);
  });
});
