export {
  type ConfigProblem,
  MachineConfigError,
  type MachineConfigErrorCode,
  MachineConfigErrors,
} from './errors.js';
export { durationMs, signalName } from './fly-values.js';
export {
  type CpuKind,
  cpuKinds,
  type Guest,
  guestLimits,
  guestOf,
  guestSchema,
  memoryMbMax,
  memoryMbMin,
  memoryMbStep,
} from './guest.js';
export type { SchemaNode } from './rules.js';
export {
  appNamePattern,
  appNameSchema,
  machineConfigSchema,
  machineNameSchema,
  restartPolicies,
  snapshotIdSchema,
  stopSignals,
  stopTimeoutSecondsMax,
  volumeIdSchema,
  volumeNameSchema,
} from './schema.js';
export { checkSchema, checksSchema, portHandlers, serviceSchema } from './services.js';
export {
  bodyValidatorCompiler,
  type Check,
  checkMachineConfig,
  compileCheck,
  phrase,
} from './validate.js';
