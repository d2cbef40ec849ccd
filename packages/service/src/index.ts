export { type ListenAddress, parseListenAddress } from './address.js';
export { type BackoffPolicy, backoffMs } from './backoff.js';
export { closedAbove } from './closed-above.js';
export {
  type BooleanSetting,
  type CommandInfo,
  type ConfigOf,
  type NumberSetting,
  parseConfig,
  type Setting,
  type Spec,
  type StringSetting,
  UsageError,
  usage,
} from './config.js';
export { HttpErrorCodes, type ServiceErrorCode, ServiceErrorCodes } from './error-codes.js';
export { defineErrors, type ErrorRegistry, HttpError } from './errors.js';
export {
  announceListening,
  createHttpServer,
  type HttpServerOptions,
  inheritedListenerFd,
  listenHttp,
} from './http.js';
export {
  defaultHttpLimits,
  type HttpLimits,
  httpLimits,
  httpLimitsSpec,
} from './http-limits.js';
export { InvariantError, invariant, present } from './invariant.js';
export { type HistogramSeries, LocalHistogram, localHistogram } from './local-histogram.js';
export { createLogger, type Logger, type LoggerOptions } from './logger.js';
export { longPolls } from './long-polls.js';
export { runMain } from './main.js';
export { type MetricsExport, startMetrics } from './metrics.js';
export { mountsUnder, unmountUnder } from './mounts.js';
export { nodeProjectAbove } from './node-project-above.js';
export { parentFdVariable, watchParent } from './parent.js';
export { privateDir } from './private-dir.js';
export {
  childrenByParent,
  isRunning,
  type ProcStat,
  procStat,
  withDescendants,
} from './proc-stat.js';
export { type ServerProcess, type ServerProcessOptions, startServerProcess } from './process.js';
export { errorCodesInReadme } from './readme.js';
export { readSecret, type SecretSource } from './secret.js';
export { serverMain } from './server-main.js';
export { onShutdown, type ShutdownOptions } from './shutdown.js';
export {
  lockState,
  type StateLock,
  StateLockedError,
  type StateLockHolder,
  stateLockHolder,
} from './state-lock.js';
export { authorizationMatches } from './token.js';
export { startTracing, type TracingExport } from './tracing.js';
