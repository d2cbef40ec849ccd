export { type CallOptions, CorrosionClient, type CorrosionClientOptions } from './client.js';
export { CorrosionError, type CorrosionErrorCode, CorrosionErrorCodes } from './errors.js';
export type {
  ExecResult,
  QueryAnswer,
  QueryEvent,
  Statement,
  TransactionAnswer,
  WatchEvent,
} from './types.js';
