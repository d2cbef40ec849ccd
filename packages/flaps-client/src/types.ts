/** The shapes of the Machines API this client reads (Fly's, as flaps serves them). */

export interface App {
  id: string;
  name: string;
  organization: { slug: string };
  status: string;
  machine_count?: number;
  volume_count?: number;
}

export interface MachineEvent {
  type: string;
  status: string;
  source: string;
  timestamp: number;
  /** What the event carries: an `exit` event its `exit_event` (how the process ended). */
  request?: { exit_event?: ExitEvent; [field: string]: unknown };
}

/** How a machine's process ended (Fly's `exit_event`). */
export interface ExitEvent {
  exit_code: number | null;
  signal: string | null;
  oom_killed: boolean;
  requested_stop: boolean;
}

export interface Machine {
  id: string;
  name: string;
  state: string;
  region: string;
  instance_id: string;
  private_ip?: string;
  private_addr?: string;
  host_id?: string;
  /** Cordoned: it runs, but the proxy sends it nothing. */
  cordoned?: boolean;
  config: Record<string, unknown>;
  events?: MachineEvent[];
  checks?: { name: string; status: string; output?: string; updated_at?: string }[];
  created_at: string;
  updated_at: string;
}

export interface Region {
  code: string;
  name: string;
  workers: number;
  [field: string]: unknown;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  exit_code: number;
  exit_signal?: number;
  truncated?: true;
}

/** One line of a machine's output (the `attributes` of Fly's log entries). */
export interface LogLine {
  timestamp: string;
  message: string;
  level: 'info' | 'error';
  instance: string;
  region: string;
  meta: { app: string; stream: 'stdout' | 'stderr'; [field: string]: unknown };
  dropped_before?: number;
}

export interface LogPage {
  data: { id: string; type: 'logs'; attributes: LogLine }[];
  meta: { next_token: string; unreachable_hosts?: string[] };
}

export interface Volume {
  id: string;
  name: string;
  state: string;
  size_gb: number;
  region: string;
  zone: string;
  encrypted: boolean;
  attached_machine_id: string | null;
  created_at: string;
  [field: string]: unknown;
}

/** Fly's answer to an extend. */
/** A volume snapshot (Fly's `VolumeSnapshot`). */
export interface VolumeSnapshot {
  id: string;
  size: number;
  digest: string;
  created_at: string;
  status: string;
  retention_days?: number | null;
}

export interface VolumeExtension {
  needs_restart: boolean;
  volume: Volume;
}

/** A hostname of an app and its certificate once an edge issued it (a Fleet extension). */
export interface Certificate {
  hostname: string;
  app: string;
  issued: boolean;
  not_after?: string;
  issuer?: string;
  subject_alt_names?: string;
  fingerprint_sha256?: string;
}

/** An app secret as flaps lists it (Fly's `AppSecret`): never its value. */
export interface Secret {
  name: string;
  /** Tells values apart without revealing them (keyed with the fleet key). */
  digest: string;
  created_at: string;
  updated_at: string;
}

/** An image flaps stores for an app (`POST /v1/apps/{app}/images`). */
export interface StoredImage {
  name: string;
  tag: string;
  digest: string;
  size_bytes: number;
  reference: string;
  manifest: Record<string, unknown>;
}
