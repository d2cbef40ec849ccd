import { join } from 'node:path';
import { createLogger } from '@fleet/service';
import { Replicator } from '../src/replication/replicator.js';
import { Store } from '../src/store.js';
import { tempDir } from './agent.js';
import { fleetKey } from './cluster.js';
import { machinesSchema } from './crdt-helpers.js';

const logger = createLogger('replication-test');
logger.level = 'silent';

/** An agent's store and replication in this process: its own SQLite file and sockets. */
export interface Replica {
  store: Store;
  replicator: Replicator;
  write(sql: string, params?: unknown[]): number | null;
  rows(): unknown[];
  stop(): Promise<void>;
}

export async function replica(bootstrap: string[], dir = tempDir()): Promise<Replica> {
  const store = new Store(join(dir, 'corrosion.db'), machinesSchema);
  const replicator = await Replicator.start(
    store,
    {
      gossipAddr: '127.0.0.1:0',
      bootstrap,
      clusterId: 'test',
      key: Buffer.from(fleetKey),
      membersPath: join(dir, 'members.json'),
      syncIntervalMs: 200,
      syncPeers: 2,
      probeIntervalMs: 100,
    },
    logger,
    () => undefined,
  );
  return {
    store,
    replicator,
    write(sql, params = []) {
      const outcome = store.transaction([{ sql, params }]);
      replicator.committed(outcome);
      return outcome.version;
    },
    rows: () => store.db.prepare('SELECT * FROM machines ORDER BY id').all(),
    async stop() {
      await replicator.stop();
      store.close();
    },
  };
}
