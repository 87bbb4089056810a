// SHOW POOLS: one row per (database, user) with client and server counts by state and the longest wait.
import { ADMIN_DB, waitedMs, type AdminEnv } from "./env.ts";
import { loadBalanceHosts, poolViews } from "./pool-view.ts";
import { columns, formatTime, secondsAndMicros, sortRows, type Cell, type Table } from "./table.ts";

const POOL_COLUMNS = columns(
  "database",
  "user",
  "#cl_active",
  "#cl_waiting",
  "#cl_active_cancel_req",
  "#cl_waiting_cancel_req",
  "#sv_active",
  "#sv_active_cancel",
  "#sv_being_canceled",
  "#sv_idle",
  "#sv_used",
  "#sv_tested",
  "#sv_login",
  "#maxwait",
  "#maxwait_us",
  "pool_mode",
  "load_balance_hosts",
  // pgbun's, after PgBouncer's: what the pool's health checks and server logins found
  "health",
  "last_check",
  "last_error",
  "#check_failures",
);

export function showPools(env: AdminEnv): Table {
  const rows: Cell[][] = [];
  for (const v of poolViews(env.api)) {
    let clActive = 0;
    let clWaiting = 0;
    let maxWait = 0;
    for (const c of v.clients) {
      if (c.state === "active") clActive++;
      else if (c.state === "waiting") {
        clWaiting++;
        maxWait = Math.max(maxWait, waitedMs(env, c));
      }
    }
    const sv = { active: 0, idle: 0, used: 0, tested: 0, being_canceled: 0 };
    for (const s of v.servers) {
      if (s.state === "active" || s.state === "idle" || s.state === "used" || s.state === "tested" || s.state === "being_canceled") sv[s.state]++;
    }
    const [wait, waitUs] = secondsAndMicros(maxWait);
    const h = v.health;
    rows.push([
      v.database,
      v.user,
      clActive,
      clWaiting,
      0,
      0,
      sv.active,
      0,
      sv.being_canceled,
      sv.idle,
      sv.used,
      sv.tested,
      v.connecting,
      wait,
      waitUs,
      v.mode,
      loadBalanceHosts(env.api.resolveDatabase(v.database)),
      h.state,
      h.lastCheck > 0 ? formatTime(h.lastCheck) : "",
      h.lastError,
      h.consecutiveFailures,
    ]);
  }
  // the console's own pool, as PgBouncer lists it
  rows.push([ADMIN_DB, ADMIN_DB, env.adminClients().length, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, "statement", "", "healthy", "", "", 0]);
  return { columns: POOL_COLUMNS, rows: sortRows(rows, 2) };
}
