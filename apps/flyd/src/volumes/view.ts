import { createHash } from 'node:crypto';
import type { Statement } from '@fleet/corrosion-client';
import type { DiskUsage } from '../runtime/disks.js';
import type { VolumeRecord } from './volume-store.js';

/** A volume's zone names its worker (Fly's zone is where the volume's disk is): 4 hex digits. */
export function zoneOf(hostId: string): string {
  return createHash('sha256').update(hostId).digest('hex').slice(0, 4);
}

/** What a volume's view and row say of its space: its filesystem's, or a folder's reckoning. */
export interface VolumeUsage extends DiskUsage {
  fstype: 'ext4' | 'dir';
}

/** Fly's Volume object (plus `host_id`). */
export function volumeView(
  volume: VolumeRecord,
  hostId: string,
  usage: VolumeUsage,
): Record<string, unknown> {
  return {
    id: volume.id,
    name: volume.name,
    state: volume.state,
    size_gb: volume.size_gb,
    region: volume.region,
    zone: zoneOf(hostId),
    encrypted: volume.encrypted,
    attached_machine_id: volume.attached_machine_id,
    attached_alloc_id: null,
    created_at: volume.created_at,
    blocks: usage.blocks,
    block_size: usage.blockSize,
    blocks_free: usage.blocksFree,
    blocks_avail: usage.blocksAvail,
    fstype: usage.fstype,
    snapshot_retention: volume.snapshot_retention,
    auto_backup_enabled: volume.auto_backup_enabled,
    host_status: 'ok',
    host_id: hostId,
  };
}

/**
 * The volume's row in corrosion, written by the worker that holds it. `used_bytes` is the blocks
 * in use (a folder's: each file rounded up to 4 KiB).
 */
export function volumeRowStatement(
  volume: VolumeRecord,
  hostId: string,
  usage: VolumeUsage,
): Statement {
  return [
    `INSERT INTO volumes (id, app, name, host_id, region, zone, state, size_gb, encrypted, fstype, attached_machine_id, snapshot_retention, auto_backup_enabled, used_bytes, created_at, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (id) DO UPDATE SET app = excluded.app, name = excluded.name, host_id = excluded.host_id,
       region = excluded.region, zone = excluded.zone, state = excluded.state, size_gb = excluded.size_gb,
       encrypted = excluded.encrypted, fstype = excluded.fstype, attached_machine_id = excluded.attached_machine_id,
       snapshot_retention = excluded.snapshot_retention, auto_backup_enabled = excluded.auto_backup_enabled,
       used_bytes = excluded.used_bytes, updated_at = excluded.updated_at`,
    [
      volume.id,
      volume.app,
      volume.name,
      hostId,
      volume.region,
      zoneOf(hostId),
      volume.state,
      volume.size_gb,
      Number(volume.encrypted),
      usage.fstype,
      volume.attached_machine_id,
      volume.snapshot_retention,
      Number(volume.auto_backup_enabled),
      (usage.blocks - usage.blocksFree) * usage.blockSize,
      volume.created_at,
      volume.updated_at,
    ],
  ];
}
