// Example plugin: read-only transactions (BEGIN READ ONLY) run on a replica's servers, everything else on the primary.
import { Stage, TxStatus, decodeQuery, definePlugin, type Client, type PluginApi, type Server } from "pgbun/plugin-sdk";

export interface ReadWriteSplitOptions {
  /**
   * [databases] entry a client is served from → the entry its read-only transactions go to. The replica entry may
   * list several standbys with target_session_attrs=standby: pgbun:routing then picks one per server login.
   */
  replicas: Record<string, string>;
  /** Replica servers per (database, user), as pool_size is for the primary (default 4). */
  poolSize?: number;
}

const NAME = "read-write-split";
/**
 * What counts as a read-only transaction: BEGIN or START TRANSACTION with READ ONLY among its modes, as the first
 * statement of the query. Only these are moved. A plain SELECT outside a transaction is not: it may call a function
 * that writes (nextval, a volatile function), take row locks (FOR UPDATE, refused on a standby), or read just after
 * the client's own commit, which a replica that lags has not replayed yet. The client says it is read-only, or it
 * stays on the primary.
 */
const READ_ONLY_BEGIN = /^\s*(?:BEGIN|START\s+TRANSACTION)\b[^;]*\bREAD\s+ONLY\b/i;

/** The replica servers of one (database, user): idle ones and clients waiting for one, as a small pool. */
class ReplicaPool {
  readonly idle: Server[] = [];
  readonly waiters: Client[] = [];
  /** Logged in and not closed. */
  readonly servers = new Set<Server>();
  connecting = 0;
  constructor(
    readonly replicaDatabase: string,
    readonly size: number,
  ) {}
}

export default definePlugin((options: ReadWriteSplitOptions) => {
  const replicas = options.replicas ?? {};
  const size = options.poolSize ?? 4;
  const pools = new Map<string, ReplicaPool>();
  /** The clients whose current transaction began READ ONLY (marked at its BEGIN, before a server is chosen). */
  const readOnly = new WeakSet<Client>();

  const poolOf = (client: Client): ReplicaPool | null => {
    const db = client.poolDatabase;
    if (!Object.hasOwn(replicas, db)) return null;
    const key = `${db}\u0000${client.user}`;
    let pool = pools.get(key);
    if (!pool) pools.set(key, (pool = new ReplicaPool(replicas[db]!, size)));
    return pool;
  };

  /** A replica server for a waiting client: the oldest waiter gets it, else it goes idle. */
  const available = (pool: ReplicaPool, server: Server) => {
    for (let c = pool.waiters.shift(); c; c = pool.waiters.shift()) {
      if (c.state === "waiting" && c.server === null) return c.linkServer(server);
    }
    server.markIdle();
    pool.idle.push(server);
  };

  /** A replica login: on failure its waiters go to the primary instead (a replica down costs them nothing). */
  const open = (api: PluginApi, pool: ReplicaPool, client: Client) => {
    const entry = api.resolveDatabase(pool.replicaDatabase);
    if (entry === null) return false;
    pool.connecting++;
    api.openServer(api.targetFor(entry, pool.replicaDatabase, client.user), pool).then(
      (server) => {
        pool.connecting--;
        pool.servers.add(server);
        available(pool, server);
      },
      (err: Error) => {
        pool.connecting--;
        api.log.warn({ database: pool.replicaDatabase, err: err.message }, "replica login failed: its read-only transactions go to the primary");
        for (const c of pool.waiters.splice(0)) {
          readOnly.delete(c);
          api.retryAcquire(c);
        }
      },
    );
    return true;
  };

  return {
    name: NAME,
    apply(api) {
      for (const replica of Object.values(replicas)) if (api.resolveDatabase(replica) === null) api.log.warn({ database: replica }, "replica entry not found");

      // the first message of a transaction, before a server is chosen: is it a read-only BEGIN?
      api.onClientMessage(
        "Query",
        (ctx) => {
          const client = ctx.client;
          if (client.server !== null || client.txStatus !== TxStatus.Idle || client.poolMode !== "transaction") return undefined;
          if (READ_ONLY_BEGIN.test(decodeQuery(ctx))) readOnly.add(client);
          else readOnly.delete(client);
          return undefined;
        },
        { stage: Stage.Observe },
      );

      // before pgbun:pool: a read-only transaction takes a replica server (or waits for one); the rest pass on
      api.hooks.needServer.tap({ name: NAME, before: "pgbun:pool" }, (client) => {
        if (!readOnly.has(client)) return undefined;
        const pool = poolOf(client);
        if (pool === null) return undefined;
        while (pool.idle.length > 0) {
          const server = pool.idle.pop()!;
          if (!server.closeNeeded && !server.fatalSeen && server.state !== "closed") return server;
          server.close("stale replica server");
        }
        if (pool.servers.size + pool.connecting >= pool.size) {
          pool.waiters.push(client);
          return null;
        }
        if (!open(api, pool, client)) return undefined;
        pool.waiters.push(client);
        return null;
      });

      // a replica server back from its transaction; one with session state left on it is closed rather than reset
      api.hooks.serverReleased.tap({ name: NAME, before: "pgbun:pool" }, (server, client) => {
        if (!(server.pool instanceof ReplicaPool)) return undefined;
        // the transaction is over: the next one is judged by its own first statement (or goes to the primary)
        if (client !== null) readOnly.delete(client);
        if (server.closeNeeded || server.fatalSeen || server.resetNeeded || server.cancelsInFlight > 0) return undefined;
        available(server.pool, server);
        return true;
      });
      api.hooks.serverClosed.tap(NAME, (server) => {
        const pool = server.pool;
        if (!(pool instanceof ReplicaPool) || !pool.servers.delete(server)) return;
        const i = pool.idle.indexOf(server);
        if (i >= 0) pool.idle.splice(i, 1);
      });
      api.hooks.clientClosed.tap(NAME, (client) => {
        readOnly.delete(client);
        for (const pool of pools.values()) {
          const i = pool.waiters.indexOf(client);
          if (i >= 0) pool.waiters.splice(i, 1);
        }
      });
    },
  };
});
