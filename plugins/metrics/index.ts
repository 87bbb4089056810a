// Built-in plugin "pgbun:metrics": the stats HTTP listener (stats_listen_addr:stats_listen_port) with Prometheus /metrics, /healthz, /readyz and the live dashboard.
import type { Server } from "bun";
import { readFileSync } from "node:fs";
import type { PgbunPlugin, PluginApi } from "../../plugin-sdk/index.ts";
import { tapErrors } from "./errors.ts";
import { metricsRegistry } from "./exposition.ts";
import { exposition, handle, type Routes } from "./http.ts";
import { gather, metricsPeerPath, serveSnapshot } from "./peers.ts";
import { ReadyCheck } from "./ready.ts";
import { takeSnapshot, type Snapshot } from "./snapshot.ts";

export const PLUGIN_NAME = "pgbun:metrics";

/** The addresses to listen on: a comma list, "*" for all (IPv4 and IPv6). */
function hostnames(addr: string): string[] {
  return addr
    .split(",")
    .map((a) => a.trim())
    .filter((a) => a !== "")
    .map((a) => (a === "*" ? "::" : a));
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
      const registry = metricsRegistry(() => current ?? takeMine());
      const readiness = new ReadyCheck();
      // one gathering at a time: scrapes that arrive while one runs share its answer (scrapers and dashboards
      // polling together cost one round over the workers, not one each)
      let gathering: Promise<Snapshot> | null = null;
      const snapshot = () =>
        (gathering ??= gather(worker, takeMine()).finally(() => {
          gathering = null;
        }));
      const routes: Routes = {
        snapshot,
        exposition: exposition(registry, (s) => (current = s)),
        contentType: registry.contentType,
        ready: (s) => readiness.check(api.config, api.shuttingDown !== null, s),
        dashboard,
      };

      let listeners: Server<undefined>[] = [];
      let listening = "";
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
        const opened: Server<undefined>[] = [];
        try {
          for (const hostname of want?.hosts ?? []) opened.push(Bun.serve({ hostname, port: want!.port, fetch: (req) => handle(req, routes) }));
        } catch (err) {
          for (const l of opened) l.stop(true);
          throw new Error(`stats listener on ${want!.key}: ${err instanceof Error ? err.message : String(err)}`);
        }
        stopListeners();
        listeners = opened;
        listening = want?.key ?? "";
        if (want) api.log.info({ addr: want.hosts.join(","), port: want.port }, `stats listener (metrics, health${dashboard ? ", dashboard" : ""}) on ${want.key}`);
      };

      configure();
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
