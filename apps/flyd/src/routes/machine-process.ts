import type { FastifyInstance } from 'fastify';
import { flydError } from '../errors.js';
import { requestNonce } from './leases.js';
import type { MachineRouteDeps } from './machines.js';

/** Suspend, config versions, processes and exec of one machine. */
export function machineProcessRoutes(app: FastifyInstance, deps: MachineRouteDeps): void {
  app.post<{ Params: { id: string } }>('/v1/machines/:id/suspend', async (request) => {
    deps.leases.check(request.params.id, requestNonce(request.headers));
    await deps.machines.suspend(request.params.id);
    return { ok: true };
  });

  app.get<{ Params: { id: string } }>('/v1/machines/:id/versions', async (request) => {
    deps.machines.get(request.params.id);
    return deps.store.versions(request.params.id);
  });

  app.get<{ Params: { id: string } }>('/v1/machines/:id/ps', async (request) =>
    deps.machines.processes(request.params.id),
  );

  app.post<{
    Params: { id: string };
    Body: { cmd?: unknown; command?: unknown; timeout?: unknown } | undefined;
  }>('/v1/machines/:id/exec', async (request) => {
    const { cmd, command, timeout = 30 } = request.body ?? {};
    let argv: string[];
    if (
      Array.isArray(command) &&
      command.length > 0 &&
      command.every((part) => typeof part === 'string')
    ) {
      argv = command as string[];
    } else if (typeof cmd === 'string' && cmd.trim() !== '') {
      argv = ['/bin/sh', '-c', cmd]; // Fly's `cmd` is one command line
    } else {
      throw flydError(
        'FLYD_ERR_BAD_REQUEST',
        'exec needs "command" (an array of strings) or "cmd"',
      );
    }
    if (typeof timeout !== 'number' || !(timeout > 0) || timeout > 600) {
      throw flydError(
        'FLYD_ERR_BAD_REQUEST',
        'timeout must be seconds, more than 0 and at most 600',
      );
    }
    deps.leases.check(request.params.id, requestNonce(request.headers));
    return deps.machines.exec(request.params.id, argv, timeout * 1000);
  });
}
