import type { CorrosionClient } from '@fleet/corrosion-client';
import type { ImageManifest } from '@fleet/images';
import { stateStoreCall } from './errors.js';

/** An image as listed: a tag (`name:tag`) or the image itself (`name@sha256:...`, tag ''). */
export interface ImageRow {
  reference: string;
  name: string;
  tag: string;
  digest: string;
  size_bytes: number;
  manifest: ImageManifest;
  updated_at: string;
}

type StoredRow = Omit<ImageRow, 'manifest'> & { manifest: string };

const columns = 'reference, name, tag, digest, size_bytes, manifest, updated_at';

const parsed = (row: StoredRow): ImageRow => ({
  ...row,
  manifest: JSON.parse(row.manifest) as ImageManifest,
});

/** The `images` table of corrosion: which digest each app's tags name, seen by every host. */
export class ImageRows {
  constructor(private readonly corrosion: CorrosionClient) {}

  /** Records an upload: the image's own row and its tag's (moved to this digest), in one transaction. */
  async record(app: string, image: Omit<ImageRow, 'reference' | 'updated_at'>): Promise<void> {
    const now = new Date().toISOString();
    const manifest = JSON.stringify(image.manifest);
    const upsert = `INSERT INTO images (app, reference, name, tag, digest, size_bytes, manifest, updated_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (app, reference) DO UPDATE SET digest = excluded.digest,
        size_bytes = excluded.size_bytes, manifest = excluded.manifest, updated_at = excluded.updated_at`;
    const row = (reference: string, tag: string): [string, unknown[]] => [
      upsert,
      [app, reference, image.name, tag, image.digest, image.size_bytes, manifest, now],
    ];
    await stateStoreCall(() =>
      this.corrosion.transaction([
        row(`${image.name}@${image.digest}`, ''),
        row(`${image.name}:${image.tag}`, image.tag),
      ]),
    );
  }

  async list(app: string): Promise<ImageRow[]> {
    const rows = await stateStoreCall(() =>
      this.corrosion.queryObjects<StoredRow>([
        `SELECT ${columns} FROM images WHERE app = ? ORDER BY name, tag = '', tag, digest`,
        [app],
      ]),
    );
    return rows.map(parsed);
  }

  async byReference(app: string, reference: string): Promise<ImageRow | undefined> {
    const rows = await stateStoreCall(() =>
      this.corrosion.queryObjects<StoredRow>([
        `SELECT ${columns} FROM images WHERE app = ? AND reference = ?`,
        [app, reference],
      ]),
    );
    return rows[0] && parsed(rows[0]);
  }
}
