import { rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type TopologyFleet, UnknownHostError } from '../hosts/topology-fleet.js';
import { forwarderCall } from './forwarder.js';

/**
 * The harness's control API, for tests and operators (the CLI in `cli.ts` calls it): HTTP with
 * JSON bodies on a unix socket in the state directory (only this machine's root reaches it).
 *
 *   GET    /v1/status                      hosts, addresses, servers, links, partitions, counters
 *   POST   /v1/links {a, b, latency_ms?, loss?}
 *   POST   /v1/partitions {hosts?: [id], regions?: [code]}   cut that set off from every other host
 *   DELETE /v1/partitions                  heal every partition
 *   POST   /v1/hosts/:id/{kill|pause|resume|restart}
 */
export const controlSocketName = 'control.sock';
const bodyBytesMax = 64 * 1024;

class RequestError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function startControlServer(fleet: TopologyFleet, socketPath: string): Promise<Server> {
  const server = createServer((request, response) => {
    handle(fleet, request)
      .then((body) => reply(response, 200, body))
      .catch((error: Error) => {
        if (error instanceof RequestError)
          return reply(response, error.status, { error: error.message, code: error.code });
        if (error instanceof UnknownHostError)
          return reply(response, 404, { error: error.message, code: error.code });
        reply(response, 500, { error: error.message, code: 'WAN_ERR_INTERNAL' });
      });
  });
  server.requestTimeout = 120_000; // a restart waits for a host's servers
  rmSync(socketPath, { force: true });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve(server));
  });
}

function reply(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json' });
  response.end(`${JSON.stringify(body)}\n`);
}

async function readJson(request: IncomingMessage): Promise<Record<string, unknown>> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > bodyBytesMax)
      throw new RequestError(413, 'WAN_ERR_BAD_REQUEST', `body over ${bodyBytesMax} bytes`);
    chunks.push(chunk);
  }
  if (size === 0) return {};
  try {
    const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed))
      return parsed as Record<string, unknown>;
  } catch {
    // answered below
  }
  throw new RequestError(400, 'WAN_ERR_BAD_REQUEST', 'the body must be a JSON object');
}

async function handle(fleet: TopologyFleet, request: IncomingMessage): Promise<unknown> {
  const path = new URL(request.url ?? '/', 'http://control').pathname;
  const method = request.method ?? 'GET';
  const wan = (body: Record<string, unknown>) => forwarderAnswer(fleet, body);
  if (method === 'GET' && path === '/v1/status') return status(fleet);
  if (method === 'POST' && path === '/v1/links') {
    const body = await readJson(request);
    return wan({ op: 'link', a: body.a, b: body.b, latency_ms: body.latency_ms, loss: body.loss });
  }
  if (method === 'POST' && path === '/v1/partitions')
    return wan({ op: 'partition', hosts: partitionAddresses(fleet, await readJson(request)) });
  if (method === 'DELETE' && path === '/v1/partitions') return wan({ op: 'heal' });
  const hostAction = /^\/v1\/hosts\/([^/]+)\/(kill|pause|resume|restart)$/.exec(path);
  if (method === 'POST' && hostAction) {
    const [, id, action] = hostAction as unknown as [string, string, string];
    if (action === 'kill') fleet.killHost(id);
    else if (action === 'pause') fleet.pauseHost(id);
    else if (action === 'resume') fleet.resumeHost(id);
    else await fleet.restartHost(id);
    return { ok: true, host: id, action };
  }
  throw new RequestError(404, 'WAN_ERR_NOT_FOUND', `no route ${method} ${path}`);
}

async function forwarderAnswer(
  fleet: TopologyFleet,
  request: Record<string, unknown>,
): Promise<unknown> {
  const answer = await forwarderCall(fleet.network.forwarder.controlPath, request);
  if (typeof answer.error === 'string')
    throw new RequestError(400, 'WAN_ERR_BAD_REQUEST', answer.error);
  return answer;
}

/** Host ids and region codes → the addresses to cut off; each name must be of this topology. */
function partitionAddresses(fleet: TopologyFleet, body: Record<string, unknown>): string[] {
  const names = (key: string) => {
    const value = body[key] ?? [];
    if (!Array.isArray(value) || value.some((item) => typeof item !== 'string'))
      throw new RequestError(400, 'WAN_ERR_BAD_REQUEST', `${key}: a list of names`);
    return value as string[];
  };
  const addresses = new Set<string>();
  for (const id of names('hosts')) {
    const host = fleet.network.hosts.find((candidate) => candidate.id === id);
    if (!host)
      throw new RequestError(400, 'WAN_ERR_BAD_REQUEST', `hosts: no host "${id}" in this topology`);
    addresses.add(host.address);
  }
  for (const code of names('regions')) {
    const hosts = fleet.network.hosts.filter((candidate) => candidate.region === code);
    if (hosts.length === 0)
      throw new RequestError(
        400,
        'WAN_ERR_BAD_REQUEST',
        `regions: no region "${code}" in this topology`,
      );
    for (const host of hosts) addresses.add(host.address);
  }
  if (addresses.size === 0)
    throw new RequestError(400, 'WAN_ERR_BAD_REQUEST', 'hosts or regions: name at least one');
  return [...addresses];
}

async function status(fleet: TopologyFleet) {
  const wan = await forwarderCall(fleet.network.forwarder.controlPath, { op: 'stats' });
  return {
    run_id: fleet.network.runId,
    api: fleet.apiUrl,
    hosts: fleet.specs.map((spec) => ({
      id: spec.id,
      region: spec.region,
      roles: spec.roles,
      address: spec.address,
      namespace: spec.namespace,
      running: fleet.hosts.has(spec.id),
      urls: fleet.hosts.get(spec.id)?.urls ?? {},
    })),
    wan,
  };
}
