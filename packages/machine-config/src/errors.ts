/** Error codes of the machine config validator; the README lists the same table. */
export const MachineConfigErrors = {
  MACHINE_CONFIG_ERR_INVALID: [
    400,
    'a field of the request (the machine config, its name) breaks the schema; the message names the field',
  ],
} as const;

export type MachineConfigErrorCode = keyof typeof MachineConfigErrors;

/** One problem with a request body: the field (`config.guest.memory_mb`) and what it must be. */
export interface ConfigProblem {
  /** Where, as a path from the body: `config.env.PATH`, `config.services[0].internal_port`. */
  field: string;
  /** The whole sentence: `config.guest.memory_mb must be an integer from 256 to 131072`. */
  message: string;
}

/** A body that breaks its schema; `field` and `message` say where and why. */
export class MachineConfigError extends Error {
  readonly code: MachineConfigErrorCode = 'MACHINE_CONFIG_ERR_INVALID';
  readonly statusCode = MachineConfigErrors.MACHINE_CONFIG_ERR_INVALID[0];
  readonly field: string;

  constructor(problem: ConfigProblem) {
    super(problem.message);
    this.name = 'MachineConfigError';
    this.field = problem.field;
  }
}
