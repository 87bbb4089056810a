// Built-in plugin "pgbun:health-check": server_check_query on servers idle past server_check_delay, at hand-out and in the background.
import { type PgbunPlugin, type PoolApi, type Server } from "../../plugin-sdk/index.ts";

const NAME = "pgbun:health-check";
/** The background sweep runs at most this often, and checks no server more often than this. */
const SWEEP_MS = 1_000;

/** The health-check plugin; replace it with a plugin that `provides: ["health-check"]`. */
export default function healthCheckPlugin(): PgbunPlugin {
  return {
    name: NAME,
    provides: ["health-check"],
    dependencies: ["pool"],
    apply(api) {
      /**
       * Checks in flight, by server, with their start (cached clock): a server that closes meanwhile would never
       * answer, and a half-open one answers nothing; the janitor's tick gives up on those, with no timer per check.
       */
      const pending = new Map<Server, { finish: (reason: string) => void; started: number }>();
      let lastSweep = 0;

      /** Since when (ms) the server was neither used nor checked; server.data[NAME] holds its last check. */
      const idleFor = (server: Server) => api.now - Math.max(server.lastUsed, (server.data[NAME] as number | undefined) ?? 0);

      /** server_check_query ("" sends an empty Query, as PgBouncer 1.25 does): undefined when it answered cleanly. */
      const check = (server: Server): Promise<string | undefined> =>
        new Promise((resolve) => {
          let settled = false;
          const finish = (reason: string | undefined) => {
            if (settled) return;
            settled = true;
            pending.delete(server);
            // the cached clock, as lastUsed: a stamp ahead of api.now would make the server look checked in the future
            server.data[NAME] = api.now;
            resolve(reason);
          };
          pending.set(server, { finish, started: api.now });
          server.runInternal(api.config.settings.server_check_query, (error) => finish(error === null ? undefined : `health check failed: ${error.code}: ${error.message}`));
        });

      /** server_check_delay in ms, read at start and on each reload: due() runs at every hand-out. */
      let delayMs = api.config.settings.server_check_delay * 1000;
      api.hooks.reload.tap(NAME, (config) => {
        delayMs = config.settings.server_check_delay * 1000;
      });
      // used within the delay: not due, whenever it was last checked (idleFor is never more than since its use)
      const due = (server: Server) => delayMs === 0 || (api.now - server.lastUsed >= delayMs && idleFor(server) >= delayMs);
      // a server used or checked within server_check_delay is handed out synchronously, at no cost
      api.hooks.checkServerDue.tap(NAME, (server) => (due(server) ? true : undefined));
      // asked anyway when another plugin checks every server: the due test again
      api.hooks.checkServer.tapPromise(NAME, async (server) => (due(server) ? check(server) : undefined));
      api.hooks.serverClosed.tap(NAME, (server, reason) => pending.get(server)?.finish(`server closed during its health check: ${reason}`));

      // the background check: idle servers past server_check_delay (at least SWEEP_MS), found by one sweep a second
      api.hooks.tick.tap(NAME, (now) => {
        if (pending.size > 0) {
          // as long as a login may take (server_connect_timeout)
          const s = api.config.settings;
          const timeoutMs = (s.server_connect_timeout > 0 ? s.server_connect_timeout : 15) * 1000;
          for (const p of [...pending.values()]) if (now - p.started > timeoutMs) p.finish(`health check got no answer in ${timeoutMs / 1000}s`);
        }
        if (now - lastSweep < SWEEP_MS) return;
        lastSweep = now;
        const pools = api.capability<PoolApi>("pool");
        if (!pools?.checkIdle) return;
        const dueMs = Math.max(api.config.settings.server_check_delay * 1000, SWEEP_MS);
        for (const server of api.servers()) {
          if (server.state === "idle" && !pending.has(server) && idleFor(server) >= dueMs) pools.checkIdle(server, check);
        }
      });
      api.hooks.shutdown.tapPromise(NAME, async () => {
        for (const p of [...pending.values()]) p.finish("shutting down");
      });
    },
  };
}
