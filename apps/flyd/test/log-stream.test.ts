import { connect } from 'node:net';
import { present } from '@fleet/service/invariant';
import { until } from '@fleet/service/vitest-until';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectStatus } from './expect-status.js';
import { call, FlydFixture, flydToken } from './flyd-fixture.js';

interface Line {
  seq: number;
  machine_id: string;
  app: string;
  region: string;
  stream: string;
  message: string;
  dropped_before?: number;
}

/** A machine printing `<tag>-0`, `<tag>-1`, … every `everyMs`, for as long as it runs. */
const ticker = (tag: string, everyMs: number) => ({
  image: 'hello',
  init: {
    exec: ['node', '-e', `let n = 0; setInterval(() => console.log('${tag}-' + n++), ${everyMs});`],
  },
  restart: { policy: 'no' },
});

/** `count` lines of 1 KiB as fast as stdout takes them, then DONE, then `TICK <n>` every 50 ms. */
const flood = (count: number) => ({
  image: 'hello',
  init: {
    exec: [
      'node',
      '-e',
      `const line = 'x'.repeat(1023) + '\\n'; let n = 0;
function write() { while (n < ${count}) { n++; if (!process.stdout.write(line)) return process.stdout.once('drain', write); }
  process.stdout.write('DONE\\n', () => { let tick = 0; setInterval(() => console.log('TICK ' + tick++), 50); }); }
write();`,
    ],
  },
  restart: { policy: 'no' },
});

/** The sum of a counter's samples with `label` on /metrics. */
async function counter(base: string, name: string, label: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) && line.includes(label))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

// The logs flaps serves to users come from here: every line names its machine, app and region,
// carries a sequence number to read on from, and a follower that stops reading loses lines
// (counted, and said on the next line it gets) without holding flyd's memory or the machine.
describe('logs of an app on one worker', () => {
  const fixture = new FlydFixture(['--region', 'ams']);
  let base: string;
  const create = async (app: string, config: object) =>
    expectStatus(await call(base, 'POST', '/v1/machines', { app, config }), 200, 'create').body
      .id as string;

  beforeAll(async () => {
    base = await fixture.start();
  });
  afterAll(async () => {
    await fixture.close();
  });

  it("reads an app's lines from all its machines, and only the newer ones from a token", async () => {
    const one = await create('talk', ticker('one', 50));
    const two = await create('talk', ticker('two', 50));
    const other = await create('quiet', ticker('other', 50));
    const first = await until('lines from both machines', async () => {
      const answer = expectStatus(await call(base, 'GET', '/v1/logs?app=talk'), 200, 'logs');
      const lines = answer.body.lines as Line[];
      const machines = new Set(lines.map((line) => line.machine_id));
      return machines.has(one) && machines.has(two) ? answer.body : undefined;
    });
    const lines = first.lines as Line[];
    expect(lines.every((line) => line.app === 'talk' && line.region === 'ams')).toBe(true);
    expect(lines.some((line) => line.machine_id === other)).toBe(false);
    const seqs = lines.map((line) => line.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(first.next_after).toBe(seqs.at(-1));

    const next = await until('newer lines', async () => {
      const answer = await call(
        base,
        'GET',
        `/v1/logs?app=talk&after=${first.next_after as number}`,
      );
      return (present(answer, 'answer').body.lines as Line[]).length > 0
        ? (present(answer, 'answer').body.lines as Line[])
        : undefined;
    });
    expect(next.every((line) => line.seq > (first.next_after as number))).toBe(true);

    const mine = expectStatus(await call(base, 'GET', `/v1/logs?instance=${one}`), 200, 'one');
    expect((mine.body.lines as Line[]).every((line) => line.machine_id === one)).toBe(true);
  });

  it('refuses a query without app or instance, and an unknown machine', async () => {
    expectStatus(await call(base, 'GET', '/v1/logs'), 400, 'no filter');
    expectStatus(await call(base, 'GET', '/v1/logs?app=talk&after=-3'), 400, 'bad after');
    expectStatus(await call(base, 'GET', '/v1/logs?instance=nope'), 404, 'unknown machine');
  });

  it('streams the kept lines and then the live ones as NDJSON', async () => {
    const id = await create('live', ticker('tick', 30));
    const controller = new AbortController();
    const response = await fetch(`${base}/v1/logs?app=live&follow=true`, {
      headers: { authorization: `Bearer ${flydToken}` },
      signal: controller.signal,
    });
    expect(response.headers.get('content-type')).toContain('application/x-ndjson');
    const reader = present(response.body, 'response.body')
      .pipeThrough(new TextDecoderStream())
      .getReader();
    const lines: Line[] = [];
    let pending = '';
    try {
      while (lines.length < 40) {
        const { value, done } = await reader.read();
        if (done) break;
        pending += value;
        const complete = pending.split('\n');
        pending = present(complete.pop(), 'complete.pop()');
        for (const text of complete) lines.push(JSON.parse(text) as Line);
      }
    } finally {
      controller.abort();
    }
    expect(lines.length).toBeGreaterThanOrEqual(40);
    expect(lines.every((line) => line.machine_id === id && line.app === 'live')).toBe(true);
    const numbers = lines.map((line) => Number(line.message.split('-')[1]));
    expect(numbers).toEqual(numbers.map((_, index) => present(numbers[0], 'numbers[0]') + index)); // none lost, in order
  });

  it('drops lines for a follower that stops reading, counts them, and says so when it reads again', async () => {
    const dropsBefore = await counter(base, 'flyd_log_lines_dropped_total', 'slow_follower');
    // A follower that reads nothing: the kernel's buffers fill and then flyd's queue for it
    // (HTTP/1.0: the body comes unchunked, one JSON line after another).
    const socket = connect(new URL(base).port as unknown as number, '127.0.0.1');
    socket.pause();
    const received: Buffer[] = [];
    socket.on('data', (chunk) => received.push(chunk));
    try {
      socket.write(
        `GET /v1/logs?app=flood&follow=true HTTP/1.0\r\nHost: flyd\r\nAuthorization: Bearer ${flydToken}\r\n\r\n`,
      );
      const id = await create('flood', flood(40_000)); // 40 MB: more than any socket buffer
      await until('dropped lines counted', async () =>
        (await counter(base, 'flyd_log_lines_dropped_total', 'slow_follower')) > dropsBefore
          ? true
          : undefined,
      );
      socket.resume(); // read again: what waited arrives, then new lines, the gap announced
      const lines = await until('the gap announced, and new lines after it', async () => {
        const text = Buffer.concat(received).toString();
        const complete = text.split('\n').filter((line) => line.startsWith('{'));
        return complete.some((line) => line.includes('"dropped_before"')) &&
          complete.at(-1)?.includes('TICK')
          ? complete
          : undefined;
      });
      const parsed = lines.map((line) => JSON.parse(line) as Line);
      expect(parsed.every((line) => line.machine_id === id)).toBe(true);
      const announced = parsed.reduce((sum, line) => sum + (line.dropped_before ?? 0), 0);
      expect(announced).toBeGreaterThan(0);
      // Every line the machine wrote up to the last one received was delivered or announced:
      // 40,000 of the flood, DONE, and TICK 0 … TICK n.
      const lastTick = Number(present(parsed.at(-1), 'parsed.at(-1)').message.split(' ')[1]);
      expect(parsed.length + announced).toBe(40_000 + 1 + lastTick + 1);
    } finally {
      socket.destroy();
    }
  }, 120_000);
});
