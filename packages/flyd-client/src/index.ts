export { type CallOptions, FlydClient, type FlydClientOptions } from './client.js';
export { FlydAnswerError, FlydUnreachableError } from './errors.js';
export type { LogLine } from './log-line.js';
