import { flydError } from '../errors.js';
import { AbortStep } from '../fsm/engine.js';

/**
 * Errors of a launch that only a change of the config can fix (a command that does not exist
 * or cannot run, a file that cannot be written where the config puts it, arguments the kernel
 * refuses): retrying cannot help, so the run ends at once. Others (a full disk, too many open
 * files) may pass, and are retried.
 */
const configCodes = new Set([
  'ENOENT',
  'EACCES',
  'EISDIR',
  'ENOTDIR',
  'EEXIST',
  'ENAMETOOLONG',
  'ELOOP',
  'E2BIG',
  'ENOEXEC',
  'ERR_INVALID_ARG_VALUE',
  'ERR_INVALID_ARG_TYPE',
]);

/** The host's own paths a message may hold, each with what the caller may see instead. */
export interface HostPaths {
  /** The machine's root: a path inside it is shown as the machine sees it (`/server.mjs`). */
  root: string;
  dataDir: string;
  /** Where every machine's root lies (`--roots-dir`). */
  rootsDir: string;
  imagesDir: string | undefined;
}

/** `message` without this worker's paths: answers and events never show a host path. */
export function hidePaths(message: string, paths: HostPaths): string {
  const hidden = message
    .replaceAll(`${paths.root}/`, '/')
    .replaceAll(paths.root, '/')
    .replaceAll(paths.rootsDir, '<roots-dir>')
    .replaceAll(paths.dataDir, '<data-dir>');
  return paths.imagesDir === undefined ? hidden : hidden.replaceAll(paths.imagesDir, '<images>');
}

/**
 * A failed launch as the run should see it: an AbortStep (not retried) when the config is the
 * cause (an AbortStep already, like an image gone from the store, or a config errno), else an
 * error the engine retries. Either way its cause is the answer the API gives,
 * 422 FLYD_ERR_LAUNCH_FAILED with the reason and no host path.
 */
export function launchError(error: unknown, paths: HostPaths): Error {
  const reason = hidePaths(error instanceof Error ? error.message : String(error), paths);
  const answer = flydError('FLYD_ERR_LAUNCH_FAILED', `launch failed: ${reason}`);
  const code = (error as { code?: unknown } | undefined)?.code;
  if (error instanceof AbortStep || (typeof code === 'string' && configCodes.has(code)))
    return new AbortStep(answer.message, { cause: answer });
  return new Error(answer.message, { cause: answer });
}
