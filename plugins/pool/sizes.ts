// A pool's sizes from its [databases] entry, its [users] entry and the settings, in PgBouncer's precedence.
import { perWorker, type DatabaseEntry, type Settings, type UserEntry } from "../../plugin-sdk/index.ts";

export interface PoolSizes {
  readonly size: number;
  readonly minSize: number;
  readonly reserveSize: number;
}

/**
 * PgBouncer's pool_pool_size and pool_res_pool_size (src/server.c): the [users] entry's value first, then the
 * [databases] entry's, then the global setting; min_pool_size has no [users] form. Each is this worker's share.
 */
export function poolSizesOf(
  entry: Pick<DatabaseEntry, "pool_size" | "min_pool_size" | "reserve_pool_size">,
  user: Pick<UserEntry, "pool_size" | "reserve_pool_size"> | undefined,
  settings: Pick<Settings, "default_pool_size" | "min_pool_size" | "reserve_pool_size">,
  workers: number,
): PoolSizes {
  return {
    size: perWorker(user?.pool_size ?? entry.pool_size ?? settings.default_pool_size, workers),
    minSize: perWorker(entry.min_pool_size ?? settings.min_pool_size, workers),
    reserveSize: perWorker(user?.reserve_pool_size ?? entry.reserve_pool_size ?? settings.reserve_pool_size, workers),
  };
}
