import { bodyValidatorCompiler } from '@fleet/machine-config';
import { defineErrors, HttpError } from '@fleet/service';

/** Error codes of flyd's API; the README lists the same table. */
export const FlydErrors = {
  FLYD_ERR_UNAUTHORIZED: [401, 'the internal token is missing or wrong'],
  FLYD_ERR_OVERLOADED: [503, 'flyd has its maximum of requests in flight (--in-flight-max)'],
  FLYD_ERR_SHUTTING_DOWN: [
    503,
    'flyd is shutting down: a long poll (wait) open at shutdown is ended with it; call again',
  ],
  FLYD_ERR_NOT_FOUND: [404, 'no such machine on this worker'],
  FLYD_ERR_CONFLICT: [
    409,
    'another operation is running on the machine and did not end within --busy-wait-ms (or too many wait for it)',
  ],
  FLYD_ERR_QUEUE_FULL: [
    409,
    "the machine is busy and its operation's queue holds its maximum of waiting runs (QueueFullError)",
  ],
  FLYD_ERR_PRECONDITION: [412, 'the machine is not in a state that allows the operation'],
  FLYD_ERR_BAD_CONFIG: [
    400,
    'the machine config is invalid: a field breaks the schema (@fleet/machine-config), an unknown image, a file over a folder of the image; the message names the field',
  ],
  FLYD_ERR_BAD_REQUEST: [
    400,
    'a query, header or body field outside the machine config is invalid (a wait state or timeout, a lease ttl, an exec command); the message names it',
  ],
  FLYD_ERR_EXISTS: [409, 'a machine with that id already exists'],
  FLYD_ERR_LEASE_HELD: [
    409,
    'another caller holds the machine lease (send its nonce in fly-machine-lease-nonce)',
  ],
  FLYD_ERR_NO_LEASE: [404, 'the machine has no lease in force'],
  FLYD_ERR_TIMEOUT: [408, 'the machine did not reach the state in time'],
  FLYD_ERR_VOLUME_NOT_FOUND: [404, 'no such volume (or snapshot) on this worker'],
  FLYD_ERR_VOLUME_ATTACHED: [
    412,
    'the volume is attached to a machine (destroy the machine first, or mount another volume)',
  ],
  FLYD_ERR_VOLUME_SHRINK: [
    400,
    'a volume only grows: extend needs a size_gb above the current one',
  ],
  FLYD_ERR_MIGRATE: [
    412,
    'the machine cannot migrate there (same host, the target worker refused it, or its stored config predates the schema and must be updated first)',
  ],
  FLYD_ERR_NO_CAPACITY: [
    412,
    "the machine does not fit on this worker: its guest's memory (or performance CPUs) exceeds what is free",
  ],
  FLYD_ERR_LAUNCH_FAILED: [
    422,
    "the machine's process could not be launched; the machine is stopped and its last event says why",
  ],
  FLYD_ERR_UNRECOVERABLE: [
    500,
    'this worker cannot finish the operation (its data is gone, an invariant broke): its run ended unrecoverable, for an operator',
  ],
  FLYD_ERR_FAILED: [500, 'the operation failed on the worker; its run records the step and error'],
  FLYD_ERR_IMAGE_PULL: [
    502,
    'an image could not be pulled from flaps (unreachable, refused the internal token, or sent bytes whose digest is not the one asked for)',
  ],
} as const;

export type FlydErrorCode = keyof typeof FlydErrors;

export const flydError = defineErrors(FlydErrors);

/**
 * The validator of routes whose body holds a machine config (create, update): the shared schema
 * (@fleet/machine-config), a problem in `config` answered 400 FLYD_ERR_BAD_CONFIG and any other
 * 400 BAD_REQUEST (the service's code for a body that breaks its schema), each naming the field.
 */
export const configValidator = bodyValidatorCompiler((problem) =>
  problem.field === 'config' || problem.field.startsWith('config.')
    ? flydError('FLYD_ERR_BAD_CONFIG', problem.message)
    : new HttpError(400, 'BAD_REQUEST', problem.message),
);
