// The HTTP routes of the stats listener: /metrics, /healthz, /readyz, the dashboard at / and its data at /api/snapshot and /api/history.
import type { Registry } from "prom-client";
import type { HistoryPoint } from "./history.ts";
import type { Readiness } from "./ready.ts";
import type { Snapshot } from "./snapshot.ts";

export interface Routes {
  /** The snapshot summed over workers. */
  snapshot(): Promise<Snapshot>;
  /** Renders /metrics for a snapshot (the registry's collect() callbacks read it). */
  exposition(s: Snapshot): Promise<string>;
  readonly contentType: string;
  ready(s: Snapshot): Promise<Readiness>;
  /** The dashboard page, or null when it is turned off. */
  readonly dashboard: string | null;
  /** The samples of the last minutes the dashboard starts its charts with. */
  history(): HistoryPoint[];
}

/** The dashboard draws what this page's own script fetches from here; nothing else may load or run. */
const DASHBOARD_HEADERS = {
  "content-type": "text/html; charset=utf-8",
  "content-security-policy": "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:",
  "x-content-type-options": "nosniff",
  "cache-control": "no-store",
};
const NO_CACHE = { "cache-control": "no-store", "x-content-type-options": "nosniff" };

/** Sets the current snapshot and renders the registry in one step: no other scrape runs between the two. */
export function exposition(registry: Registry, setCurrent: (s: Snapshot) => void): (s: Snapshot) => Promise<string> {
  return (s) => {
    setCurrent(s);
    return registry.metrics();
  };
}

export async function handle(req: Request, routes: Routes): Promise<Response> {
  if (req.method !== "GET" && req.method !== "HEAD") return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
  const path = new URL(req.url).pathname;
  switch (path) {
    case "/metrics": {
      const body = await routes.exposition(await routes.snapshot());
      return new Response(body, { headers: { "content-type": routes.contentType, ...NO_CACHE } });
    }
    case "/healthz":
      return new Response("ok\n", { headers: { "content-type": "text/plain; charset=utf-8", ...NO_CACHE } });
    case "/readyz": {
      const r = await routes.ready(await routes.snapshot());
      return Response.json(r, { status: r.ready ? 200 : 503, headers: NO_CACHE });
    }
    case "/api/snapshot":
      if (routes.dashboard === null) break;
      return Response.json(await routes.snapshot(), { headers: NO_CACHE });
    case "/api/history":
      if (routes.dashboard === null) break;
      return Response.json(routes.history(), { headers: NO_CACHE });
    case "/":
    case "/dashboard":
      if (routes.dashboard === null) break;
      return new Response(routes.dashboard, { headers: DASHBOARD_HEADERS });
  }
  return new Response("not found\n", { status: 404, headers: { "content-type": "text/plain; charset=utf-8" } });
}
