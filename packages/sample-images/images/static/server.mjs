// The `static` machine image: serves files over HTTP on PORT, with GET and HEAD. The files are
// those of the machine's volume (FLEET_VOLUME_DIR, set by flyd when the config mounts one), else
// those of its working directory (its root: a copy of this folder). A directory answers with its
// index.html, or a plain-text listing. Nothing outside the served directory is reachable: paths
// are resolved, symlinks too, and checked to stay inside it.
import { createReadStream } from 'node:fs';
import { readdir, realpath, stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import { extname, join, sep } from 'node:path';

const port = Number(process.env.PORT ?? 8080);
// A machine in a network of its own listens on all of it, as on Fly (where 127.0.0.1 is out of
// the proxy's reach); one sharing the host's (FLY_PRIVATE_IP 127.0.0.1) on loopback only.
const listenAddress = process.env.FLY_PRIVATE_IP === '127.0.0.1' ? '127.0.0.1' : '0.0.0.0';
const root = await realpath(process.env.FLEET_VOLUME_DIR || process.cwd());
/** Bound on a listing's entries (a volume may hold many files). */
const listingEntriesMax = 1_000;

const types = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.ico': 'image/x-icon',
};

function answer(response, status, text) {
  response.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  response.end(text);
}

/** The real path of a request inside `root`, or undefined when it does not exist or escapes. */
async function resolveInside(urlPath) {
  let decoded;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return undefined;
  }
  if (decoded.includes('\0')) return undefined;
  const real = await realpath(join(root, decoded)).catch(() => undefined);
  if (real === undefined || (real !== root && !real.startsWith(root + sep))) return undefined;
  return real;
}

async function serve(request, response) {
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.setHeader('allow', 'GET, HEAD');
    return answer(response, 405, 'method not allowed\n');
  }
  const urlPath = new URL(request.url ?? '/', 'http://static').pathname;
  let path = await resolveInside(urlPath);
  if (path === undefined) return answer(response, 404, 'not found\n');
  let info = await stat(path);
  if (info.isDirectory()) {
    const index = await resolveInside(join(urlPath, 'index.html'));
    const indexInfo = index && (await stat(index).catch(() => undefined));
    if (!indexInfo?.isFile()) {
      const names = (await readdir(path, { withFileTypes: true }))
        .slice(0, listingEntriesMax)
        .map((entry) => (entry.isDirectory() ? `${entry.name}/` : entry.name));
      return answer(response, 200, `${names.sort().join('\n')}\n`);
    }
    path = index;
    info = indexInfo;
  }
  if (!info.isFile()) return answer(response, 404, 'not found\n');
  response.writeHead(200, {
    'content-type': types[extname(path).toLowerCase()] ?? 'application/octet-stream',
    'content-length': info.size,
  });
  if (request.method === 'HEAD') return response.end();
  const file = createReadStream(path);
  file.on('error', () => response.destroy());
  file.pipe(response);
}

const server = createServer((request, response) => {
  serve(request, response).catch(() => {
    if (!response.headersSent) answer(response, 500, 'internal error\n');
    else response.destroy();
  });
});

server.listen(port, listenAddress, () => {
  console.log(`static: serving ${root} on ${port}`);
});

const stop = (signal) => {
  console.log(`static: ${signal}, shutting down`);
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
