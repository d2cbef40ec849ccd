/** One line of a machine's output, as flyd's `GET /v1/logs` serves it. */
export interface LogLine {
  /** Orders every line of this worker; a reader passes the last one it saw as `after`. */
  seq: number;
  timestamp: number;
  machine_id: string;
  app: string;
  region: string;
  stream: 'stdout' | 'stderr';
  message: string;
  /** The line was longer than the line bound and was cut. */
  truncated?: true;
  /** Lines of this stream dropped just before this one because its reader fell behind. */
  dropped_before?: number;
}
