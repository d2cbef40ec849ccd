-- The fleet schema: the tables corrosion replicates to every host (see ../../shared/DESIGN.md).
-- Corrosion's rules: every table has a non-null primary key; every NOT NULL column has a default
-- (a CRDT merge may create a row from one column at a time). Times are ISO-8601 UTC text; JSON
-- columns hold JSON text.

CREATE TABLE regions (
  code TEXT NOT NULL PRIMARY KEY,
  name TEXT NOT NULL DEFAULT '',
  lat REAL NOT NULL DEFAULT 0,
  lon REAL NOT NULL DEFAULT 0
);

-- One row per host, written by that host (flyd on workers, fly-proxy on edges).
CREATE TABLE hosts (
  id TEXT NOT NULL PRIMARY KEY,
  region TEXT NOT NULL DEFAULT '',
  role TEXT NOT NULL DEFAULT 'worker',           -- worker | edge
  backhaul_addr TEXT,                            -- host:port edges dial (backhaul fly-proxy)
  flyd_addr TEXT,                                -- base URL of the host's flyd API
  cpus INTEGER NOT NULL DEFAULT 0,
  memory_mb INTEGER NOT NULL DEFAULT 0,
  cpus_reserved INTEGER NOT NULL DEFAULT 0,
  memory_mb_reserved INTEGER NOT NULL DEFAULT 0,
  machine_count INTEGER NOT NULL DEFAULT 0,
  status TEXT NOT NULL DEFAULT 'ready',          -- ready | cordoned | down
  updated_at TEXT NOT NULL DEFAULT '',
  gossip_addr TEXT                               -- host:port of its corrosion's gossip: SWIM's member address, how flaps maps a dead member to its host
);

CREATE TABLE apps (
  name TEXT NOT NULL PRIMARY KEY,
  org TEXT NOT NULL DEFAULT 'personal',
  network TEXT NOT NULL DEFAULT 'default',
  created_at TEXT NOT NULL DEFAULT ''
);

CREATE TABLE app_hostnames (
  hostname TEXT NOT NULL PRIMARY KEY,
  app TEXT NOT NULL DEFAULT ''
);

-- Written only by flyd on the owning host: the worker is the source of truth for its machines.
CREATE TABLE machines (
  id TEXT NOT NULL PRIMARY KEY,
  app TEXT NOT NULL DEFAULT '',
  name TEXT NOT NULL DEFAULT '',                 -- as given at create (flyd defaults it to the id); not unique
  host_id TEXT NOT NULL DEFAULT '',
  region TEXT NOT NULL DEFAULT '',
  instance_id TEXT NOT NULL DEFAULT '',
  state TEXT NOT NULL DEFAULT 'created',         -- Fly machine states: created, starting, started, stopping, stopped, destroying, destroyed, ...
  private_addr TEXT,                             -- host:port the backhaul proxy dials on its own host
  config TEXT NOT NULL DEFAULT '{}',
  metadata TEXT NOT NULL DEFAULT '{}',
  created_at TEXT NOT NULL DEFAULT '',
  updated_at TEXT NOT NULL DEFAULT ''
);
CREATE INDEX machines_app ON machines (app);

CREATE TABLE services (
  machine_id TEXT NOT NULL,
  internal_port INTEGER NOT NULL,
  app TEXT NOT NULL DEFAULT '',
  protocol TEXT NOT NULL DEFAULT 'tcp',
  ports TEXT NOT NULL DEFAULT '[]',              -- [{"port":80,"handlers":["http"]}, ...]
  handlers TEXT NOT NULL DEFAULT '[]',
  concurrency TEXT NOT NULL DEFAULT '{}',
  autostart INTEGER NOT NULL DEFAULT 0,
  autostop TEXT NOT NULL DEFAULT 'off',
  min_machines_running INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (machine_id, internal_port)
);
CREATE INDEX services_app ON services (app);

CREATE TABLE health_checks (
  machine_id TEXT NOT NULL,
  name TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'unknown',        -- passing | warning | critical | unknown
  output TEXT NOT NULL DEFAULT '',
  updated_at TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (machine_id, name)
);

CREATE TABLE virtual_services (
  app TEXT NOT NULL,
  name TEXT NOT NULL,
  selector TEXT NOT NULL DEFAULT '{}',
  path_prefix TEXT NOT NULL DEFAULT '/',
  internal_port INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (app, name)
);

-- Private keys travel sealed with the fleet key, never in clear.
CREATE TABLE certificates (
  hostname TEXT NOT NULL PRIMARY KEY,
  app TEXT NOT NULL DEFAULT '',
  cert_pem TEXT NOT NULL DEFAULT '',
  sealed_key TEXT NOT NULL DEFAULT '',
  not_after TEXT NOT NULL DEFAULT ''
);

-- API tokens of organizations, written by flaps. Only a token's SHA-256 is kept: the table
-- replicates to every host, and a hash is useless to whoever reads it.
CREATE TABLE org_tokens (
  token_sha256 TEXT NOT NULL PRIMARY KEY,
  org TEXT NOT NULL DEFAULT '',
  name TEXT NOT NULL DEFAULT '',
  created_at TEXT NOT NULL DEFAULT ''
);

-- Volumes (a disk of its size on one worker, or a directory), written only by flyd on the worker that holds the volume.
-- After a migrate the target worker's flyd writes the row with its own host_id.
CREATE TABLE volumes (
  id TEXT NOT NULL PRIMARY KEY,                  -- vol_ + 16 lowercase alphanumerics
  app TEXT NOT NULL DEFAULT '',
  name TEXT NOT NULL DEFAULT '',
  host_id TEXT NOT NULL DEFAULT '',
  region TEXT NOT NULL DEFAULT '',
  zone TEXT NOT NULL DEFAULT '',
  state TEXT NOT NULL DEFAULT 'created',         -- created | destroyed
  size_gb INTEGER NOT NULL DEFAULT 1,
  encrypted INTEGER NOT NULL DEFAULT 0,
  fstype TEXT NOT NULL DEFAULT 'dir',           -- ext4 (a disk) | dir (a folder: disks off)
  attached_machine_id TEXT,
  snapshot_retention INTEGER NOT NULL DEFAULT 5,
  auto_backup_enabled INTEGER NOT NULL DEFAULT 0,
  used_bytes INTEGER NOT NULL DEFAULT 0,         -- bytes in use (a disk's blocks; a directory's files in 4 KiB blocks), at the last change or stop (GET on the volume is live)
  created_at TEXT NOT NULL DEFAULT '',
  updated_at TEXT NOT NULL DEFAULT ''
);
CREATE INDEX volumes_app ON volumes (app);

-- Snapshots of volumes (copies of the directory kept by the flyd that holds them).
CREATE TABLE volume_snapshots (
  id TEXT NOT NULL PRIMARY KEY,                  -- vs_ + 16 lowercase alphanumerics
  volume_id TEXT NOT NULL DEFAULT '',
  app TEXT NOT NULL DEFAULT '',
  host_id TEXT NOT NULL DEFAULT '',
  size INTEGER NOT NULL DEFAULT 0,               -- bytes
  created_at TEXT NOT NULL DEFAULT ''
);
CREATE INDEX volume_snapshots_volume ON volume_snapshots (volume_id);

-- Images uploaded to flaps (issue 16), per app. Each upload writes two rows: `name@sha256:<hex>`
-- (the image itself, kept) and `name:tag` (the tag, moved to the new digest by a later upload).
-- The archive lives in flaps' --images-dir; flyd pulls it by digest.
CREATE TABLE images (
  app TEXT NOT NULL,
  reference TEXT NOT NULL,                       -- name:tag or name@sha256:<hex>
  name TEXT NOT NULL DEFAULT '',
  tag TEXT NOT NULL DEFAULT '',                  -- '' on the digest row
  digest TEXT NOT NULL DEFAULT '',               -- sha256:<hex> of the archive
  size_bytes INTEGER NOT NULL DEFAULT 0,
  manifest TEXT NOT NULL DEFAULT '{}',           -- image.json as uploaded
  updated_at TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (app, reference)
);

-- App secrets (issue 16), written by flaps. Only the sealed value is kept (fleet key, context
-- `app-secret:<app>/<name>`): flyd opens it when it starts one of the app's machines. The digest
-- is keyed with the fleet key too (see @fleet/fleet-key), so it reveals nothing of the value.
CREATE TABLE app_secrets (
  app TEXT NOT NULL,
  name TEXT NOT NULL,
  sealed TEXT NOT NULL DEFAULT '',
  digest TEXT NOT NULL DEFAULT '',
  created_at TEXT NOT NULL DEFAULT '',
  updated_at TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (app, name)
);
