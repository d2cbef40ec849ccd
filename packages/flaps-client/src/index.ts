export { type CallOptions, FlapsClient, type LogsQuery } from './client.js';
export { FlapsError } from './errors.js';
export type {
  App,
  Certificate,
  ExecResult,
  ExitEvent,
  LogLine,
  LogPage,
  Machine,
  MachineEvent,
  Region,
  Secret,
  StoredImage,
  Volume,
  VolumeExtension,
  VolumeSnapshot,
} from './types.js';
