import { CorrosionError } from '@fleet/corrosion-client';
import { bodyValidatorCompiler } from '@fleet/machine-config';
import { defineErrors, HttpError } from '@fleet/service';

/**
 * Error codes of the Machines API; the README lists the same table. Bodies follow Fly's shape,
 * `{"error": "<message>"}`, with our stable `code` beside it.
 */
export const FlapsErrors = {
  FLAPS_ERR_UNAUTHORIZED: [401, 'missing or wrong API token, or an operator-only call'],
  FLAPS_ERR_OVERLOADED: [
    503,
    'flaps has its maximum of requests in flight (--in-flight-max), or 10000 placement groups are placing machines at once',
  ],
  FLAPS_ERR_SHUTTING_DOWN: [
    503,
    'flaps is shutting down: a long poll (a machine wait) open at shutdown is ended with it; call again',
  ],
  FLAPS_ERR_ORG_NOT_FOUND: [404, 'no such organization for this token'],
  FLAPS_ERR_BAD_REQUEST: [400, 'the request is malformed; the message names the field'],
  FLAPS_ERR_BAD_CONFIG: [
    400,
    'the machine config breaks its schema (@fleet/machine-config); the message names the field',
  ],
  FLAPS_ERR_APP_NOT_FOUND: [404, 'no such app'],
  FLAPS_ERR_MACHINE_NOT_FOUND: [404, 'no such machine in this app'],
  FLAPS_ERR_WRONG_VERSION: [412, 'a wait named a version (instance_id) the machine is not at'],
  FLAPS_ERR_NAME_TAKEN: [422, 'an app with that name exists'],
  FLAPS_ERR_NO_CAPACITY: [
    412,
    'no worker has room (in the requested region); the message lists regions with room',
  ],
  FLAPS_ERR_VOLUME_NOT_FOUND: [404, 'no such volume (or snapshot) in this app'],
  FLAPS_ERR_HOSTNAME_NOT_FOUND: [404, "no such hostname among the app's certificates"],
  FLAPS_ERR_VOLUME_ATTACHED: [412, 'the volume is attached to another machine'],
  FLAPS_ERR_VOLUME_REGION: [
    400,
    "the volume is in another region than the one asked for (a machine goes to its volume's worker)",
  ],
  FLAPS_ERR_WORKER_UNREACHABLE: [503, "the machine's worker (flyd) could not be reached"],
  FLAPS_ERR_WORKER: [
    502,
    "the worker answered an error without a code of flyd's registry (not flyd's own answer)",
  ],
  FLAPS_ERR_STATE_STORE: [503, 'corrosion (the state store) could not be reached'],
  FLAPS_ERR_BAD_IMAGE: [
    400,
    'an uploaded archive is not a valid image (not a .tar.gz, an unsafe entry, a bad image.json); the message names the problem',
  ],
  FLAPS_ERR_IMAGE_DIGEST: [400, "the uploaded archive's sha256 is not the digest the client gave"],
  FLAPS_ERR_IMAGE_TOO_LARGE: [
    413,
    'an uploaded archive is over --image-bytes-max, or unpacks to more than --image-unpacked-bytes-max',
  ],
  FLAPS_ERR_IMAGE_NOT_FOUND: [404, 'no such image (reference or digest) in this app or store'],
  FLAPS_ERR_NO_IMAGE_STORE: [503, 'this flaps keeps no images (started without --images-dir)'],
  FLAPS_ERR_SECRET_NOT_FOUND: [404, 'no such secret in this app'],
  FLAPS_ERR_NO_FLEET_KEY: [
    503,
    'this flaps cannot seal secrets (started without --fleet-key-file)',
  ],
} as const;

export type FlapsErrorCode = keyof typeof FlapsErrors;

export const flapsError = defineErrors(FlapsErrors);

/**
 * The validator of routes whose body holds a machine config or a part of one (create and update;
 * a placement's or a volume's `compute`, a guest): the schema flyd checks too
 * (@fleet/machine-config). A problem in `config` is 400 FLAPS_ERR_BAD_CONFIG, any other 400
 * BAD_REQUEST (the service's code for a body that breaks its schema), each naming the field; the
 * Fly error shape (`invalid_argument: ...`) is added by fly-errors.ts.
 */
export const configValidator = bodyValidatorCompiler((problem) =>
  problem.field === 'config' || problem.field.startsWith('config.')
    ? flapsError('FLAPS_ERR_BAD_CONFIG', problem.message)
    : new HttpError(400, 'BAD_REQUEST', problem.message),
);

/**
 * A call to flaps' corrosion (the state store): a failure of the store (unreachable, refused,
 * a statement it rejects) is 503 FLAPS_ERR_STATE_STORE to the caller; other errors pass as they are.
 */
export async function stateStoreCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof CorrosionError)
      throw flapsError('FLAPS_ERR_STATE_STORE', `state store: ${error.message}`);
    throw error;
  }
}
