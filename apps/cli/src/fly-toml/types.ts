/** A fly.toml as `readFlyToml` returns it, checked against `flyTomlSchema`. */

export interface FlyCheck {
  type?: 'http' | 'tcp';
  port?: number;
  interval?: string | number;
  timeout?: string | number;
  grace_period?: string | number;
  method?: string;
  path?: string;
  protocol?: 'http' | 'https';
  tls_skip_verify?: boolean;
  headers?: Record<string, string>;
}

export interface FlyConcurrency {
  type?: 'connections' | 'requests';
  soft_limit?: number;
  hard_limit?: number;
}

interface FlyServiceCommon {
  internal_port: number;
  auto_stop_machines?: boolean | 'off' | 'stop' | 'suspend';
  auto_start_machines?: boolean;
  min_machines_running?: number;
  concurrency?: FlyConcurrency;
}

export interface FlyHttpService extends FlyServiceCommon {
  force_https?: boolean;
  checks?: FlyCheck[];
}

export interface FlyService extends FlyServiceCommon {
  protocol?: 'tcp' | 'udp';
  ports?: { port?: number; handlers?: string[]; force_https?: boolean; [key: string]: unknown }[];
  tcp_checks?: FlyCheck[];
  http_checks?: FlyCheck[];
}

export interface FlyVm {
  size?: string;
  memory?: string | number;
  memory_mb?: number;
  cpus?: number;
  cpu_kind?: 'shared' | 'performance';
}

export type DeployStrategy = 'rolling' | 'immediate' | 'canary' | 'bluegreen';

export interface FlyToml {
  app: string;
  primary_region?: string;
  kill_signal?: string;
  kill_timeout?: string | number;
  swap_size_mb?: number;
  build?: { image?: string; dir?: string };
  deploy?: {
    strategy?: DeployStrategy;
    max_unavailable?: number;
    release_command?: string;
    wait_timeout?: string | number;
  };
  env?: Record<string, string | number | boolean>;
  http_service?: FlyHttpService;
  services?: FlyService[];
  checks?: Record<string, FlyCheck>;
  vm?: FlyVm[];
  mounts?: FlyMount | FlyMount[];
}

export interface FlyMount {
  source: string;
  destination: string;
  initial_size?: string | number;
}
