// Built-in plugin "pgbun:metrics": the stats HTTP listener (stats_listen_addr:stats_listen_port) with Prometheus /metrics, /healthz, /readyz and the live dashboard.
import type { Server } from "bun";
import { readFileSync } from "node:fs";
import type { PgbunPlugin, PluginApi } from "../../plugin-sdk/index.ts";
import { tapErrors } from "./errors.ts";
import { metricsRegistry } from "./exposition.ts";
import { exposition, handle, type Routes } from "./http.ts";
import { History } from "./history.ts";
import { gather, metricsPeerPath, serveSnapshot } from "./peers.ts";
import { ReadyCheck } from "./ready.ts";
import { takeSnapshot, type Snapshot } from "./snapshot.ts";

export const PLUGIN_NAME = "pgbun:metrics";

/** The addresses to listen on: a comma list, "*" for all. */
function hostnames(addr: string): string[] {
  return addr
    .split(",")
    .map((a) => a.trim())
    .filter((a) => a !== "");
}

/** Listens on `hostname`; "*" is every address: IPv6 and IPv4 ("::"), or IPv4 alone on a host without IPv6. */
function serve(hostname: string, port: number, fetch: (req: Request) => Promise<Response>): Server<undefined> {
  if (hostname !== "*") return Bun.serve({ hostname, port, fetch });
  try {
    return Bun.serve({ hostname: "::", port, fetch });
  } catch {
    return Bun.serve({ hostname: "0.0.0.0", port, fetch });
  }
}

/** Where the listener should be, or null when it is off (port 0 or no address). */
function wanted(api: PluginApi): { hosts: string[]; port: number; key: string } | null {
  const { stats_listen_addr: addr, stats_listen_port: port } = api.config.settings;
  const hosts = hostnames(addr);
  if (port === 0 || hosts.length === 0) return null;
  return { hosts, port, key: `${hosts.join(",")}:${port}` };
}

/**
 * Worker 0 owns the HTTP listener; with workers > 1 every other worker serves its own snapshot on a private Unix
 * socket, and worker 0 sums them per request (the way the admin console merges its tables). The dashboard is on by
 * default; `["pgbun:metrics", { dashboard: false }]` leaves only the endpoints.
 */
export default function metricsPlugin(): PgbunPlugin {
  return {
    name: PLUGIN_NAME,
    provides: ["metrics"],
    apply(api) {
      const errors = tapErrors(api);
      const worker = api.worker;
      const takeMine = (): Snapshot => takeSnapshot(api, errors);
      const dashboard = api.options.dashboard === false ? null : readFileSync(new URL("./dashboard.html", import.meta.url), "utf8");
      let current: Snapshot | null = null;
      const registry = metricsRegistry(() => current ?? takeMine(), () => api.config);
      const readiness = new ReadyCheck();
      // one gathering at a time: scrapes that arrive while one runs share its answer (scrapers and dashboards
      // polling together cost one round over the workers, not one each)
      let gathering: Promise<Snapshot> | null = null;
      const snapshot = () =>
        (gathering ??= gather(worker, takeMine()).finally(() => {
          gathering = null;
        }));
      const history = new History();
      const routes: Routes = {
        snapshot,
        history: () => history.read(),
        exposition: exposition(registry, (s) => (current = s)),
        contentType: registry.contentType,
        ready: (s) => readiness.check(api.config, api.shuttingDown !== null, s),
        dashboard,
      };

      let listeners: Server<undefined>[] = [];
      let listening = "";
      let active: ReturnType<typeof wanted> = null;
      let peer: Server<undefined> | null = null;

      const stopListeners = () => {
        for (const l of listeners) l.stop(true);
        listeners = [];
        listening = "";
      };
      /** Opens, moves or closes the listener as the settings say; throws when it cannot listen. */
      const configure = () => {
        const want = wanted(api);
        if (worker.count > 1 && worker.id !== 0) {
          if (want && !peer) peer = serveSnapshot(metricsPeerPath(worker, worker.id), takeMine);
          else if (!want && peer) {
            peer.stop(true);
            peer = null;
          }
          return;
        }
        if ((want?.key ?? "") === listening) return;
        const open = (w: NonNullable<typeof want>) => {
          const opened: Server<undefined>[] = [];
          try {
            for (const hostname of w.hosts) opened.push(serve(hostname, w.port, (req) => handle(req, routes)));
          } catch (err) {
            for (const l of opened) l.stop(true);
            throw new Error(`stats listener on ${w.key}: ${err instanceof Error ? err.message : String(err)}`);
          }
          return opened;
        };
        // other addresses on the same port (127.0.0.1 to *) would collide with the old sockets: those close first
        const before = active;
        const samePort = before !== null && want !== null && before.port === want.port;
        if (samePort) stopListeners();
        let opened: Server<undefined>[] = [];
        try {
          opened = want ? open(want) : [];
        } catch (err) {
          if (samePort) {
            listeners = open(before);
            listening = before.key;
          }
          throw err;
        }
        stopListeners();
        listeners = opened;
        listening = want?.key ?? "";
        active = want;
        if (want) api.log.info({ addr: want.hosts.join(","), port: want.port }, `stats listener (metrics, health${dashboard ? ", dashboard" : ""}) on ${want.key}`);
      };

      configure();
      // the dashboard's recent past, sampled by the worker that listens while it listens
      if (dashboard !== null) {
        api.hooks.tick.tap(PLUGIN_NAME, () => {
          const now = Date.now();
          if (listening === "" || !history.due(now)) return;
          history.started(now);
          snapshot().then(
            (s) => history.record(s),
            (err) => api.log.debug({ err }, "dashboard sample failed"),
          );
        });
      }
      api.hooks.reload.tap(PLUGIN_NAME, () => {
        try {
          configure();
        } catch (err) {
          api.log.error({ err }, "stats listener not moved: the old one stays");
        }
      });
      api.hooks.shutdown.tapPromise(PLUGIN_NAME, async () => {
        stopListeners();
        peer?.stop(true);
        peer = null;
      });
    },
  };
}
