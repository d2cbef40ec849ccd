// nginx as the benches' baseline: installed from Debian when missing, one worker, its own
// config, pid and logs in the bench's directory, stopped by the bench.
import { execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { procStat } from '@fleet/service/proc-stat';

/** Installs Debian's wrk, nginx-light and nghttp2-client when one of `tools` is missing (as root). */
export function ensureTools(tools) {
  const missing = tools.filter((tool) => !which(tool));
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) {
    throw new Error(`missing ${missing.join(', ')}: apt-get install wrk nginx-light (as root)`);
  }
  console.log('installing wrk and nginx-light from Debian (apt-get)...');
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
  execFileSync('apt-get', ['install', '-y', '-qq', 'wrk', 'nginx-light', 'nghttp2-client'], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  // Debian's package may start a system nginx: the bench runs its own, and leaves none behind.
  execFileSync('sh', ['-c', 'nginx -s stop 2>/dev/null || true']);
}

function which(tool) {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export async function freePort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * Starts nginx (`workers` worker processes, 1 by default) with `serverBlock` (its `listen` line
 * says `LISTEN`, replaced by a free loopback port) inside an `http {}` of `httpBlock`. Resolves
 * with the port, the first worker's pid, every worker's pid (the ones doing the work: the
 * master's children) and a stop function.
 */
export async function startNginx(dir, name, serverBlock, httpBlock = '', workers = 1) {
  const port = await freePort(); // nginx cannot report a port the kernel chose
  const conf = join(dir, `nginx-${name}.conf`);
  writeFileSync(
    conf,
    `worker_processes ${workers};
pid ${join(dir, `nginx-${name}.pid`)};
error_log ${join(dir, `nginx-${name}-error.log`)} warn;
daemon off;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000; # no reconnects mid-run (the default 1000 closes h2 connections)
  client_body_temp_path ${dir}; proxy_temp_path ${dir};
  fastcgi_temp_path ${dir}; uwsgi_temp_path ${dir}; scgi_temp_path ${dir};
  ${httpBlock}
  server {
    ${serverBlock.replace('LISTEN', `127.0.0.1:${port}`)}
  }
}
`,
  );
  const nginx = spawn('nginx', ['-c', conf, '-p', dir], { stdio: 'inherit' });
  const exited = new Promise((resolve) => nginx.once('exit', resolve));
  const stop = async () => {
    nginx.kill('SIGTERM');
    await exited;
  };
  let pids = [];
  for (let tries = 0; pids.length < workers && tries < 100; tries += 1) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    const found = execFileSync('sh', ['-c', `pgrep -P ${nginx.pid} || true`], {
      encoding: 'utf8',
    });
    pids = found
      .split('\n')
      .map(Number)
      .filter((pid) => pid > 0);
  }
  if (pids.length < workers) {
    await stop();
    throw new Error(`nginx ${name} did not start its ${workers} workers (see ${dir})`);
  }
  return { port, pid: pids[0], pids, stop };
}

/** CPU time (user + system) a process used so far, ms. */
export const cpuMs = (pid) => procStat(pid).cpuMs;
