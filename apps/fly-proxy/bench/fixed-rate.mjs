// Latency at a fixed request rate, open loop (Debian has no wrk2): requests are started on a
// schedule whatever the answers do, and each one's latency is counted from when it was due, so
// a stall shows in the percentiles instead of slowing the load (no coordinated omission).
import { Pool } from 'undici';

/**
 * Sends `rate` requests per second for `seconds` to `url` with `Host: host`, after one second
 * at that rate whose figures are dropped (connections, JIT); percentiles in ms.
 */
export async function fixedRate(url, host, rate, seconds, connections = 64) {
  await run(url, host, rate, 1, connections);
  return run(url, host, rate, seconds, connections);
}

async function run(url, host, rate, seconds, connections) {
  const pool = new Pool(url, { connections, pipelining: 1 });
  const latencies = [];
  let failed = 0;
  const started = performance.now();
  const total = Math.round(rate * seconds);
  const inFlight = new Set();
  let sent = 0;
  await new Promise((resolve) => {
    const tick = setInterval(() => {
      const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate));
      for (; sent < due; sent += 1) {
        const dueAt = started + (sent / rate) * 1000;
        const one = pool
          .request({ path: '/', method: 'GET', headers: { host } })
          .then((answer) => answer.body.dump().then(() => answer.statusCode))
          .then(
            (status) => {
              if (status === 200) latencies.push(performance.now() - dueAt);
              else failed += 1;
            },
            () => {
              failed += 1;
            },
          )
          .finally(() => inFlight.delete(one));
        inFlight.add(one);
      }
      if (sent >= total) {
        clearInterval(tick);
        resolve();
      }
    }, 1);
  });
  await Promise.all(inFlight);
  await pool.close();
  latencies.sort((a, b) => a - b);
  const at = (q) =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
  return { p50: at(0.5), p99: at(0.99), p999: at(0.999), failed, answered: latencies.length };
}
