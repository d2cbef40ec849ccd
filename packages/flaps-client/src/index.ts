export { type CallOptions, FlapsClient, type LogsQuery } from './client.js';
export { FlapsError } from './errors.js';
export type {
  App,
  Certificate,
  ExecResult,
  LogLine,
  LogPage,
  Machine,
  MachineEvent,
  Region,
  Volume,
} from './types.js';
