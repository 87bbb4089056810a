// target_session_attrs as libpq defines it: what a logged-in server is (standby, read-only) and whether it fits.
import type { Server, TargetSessionAttrs } from "../../plugin-sdk/index.ts";

/** What a session is, as libpq's target_session_attrs looks at it. */
export interface SessionRole {
  /** In recovery (hot standby): pg_is_in_recovery(), or in_hot_standby. */
  standby: boolean;
  /** Read-only transactions by default: transaction_read_only, or in_hot_standby / default_transaction_read_only. */
  readOnly: boolean;
}

/** For servers older than PostgreSQL 14, which do not report in_hot_standby: one round trip, as libpq makes. */
const ROLE_QUERY = "SELECT pg_catalog.pg_is_in_recovery(), pg_catalog.current_setting('transaction_read_only')";

/**
 * The role from the ParameterStatus PostgreSQL 14+ sends at login and again when it changes (a promotion sends
 * in_hot_standby off to every session): no round trip. null when the server does not report them.
 */
export function reportedRole(params: ReadonlyMap<string, string>): SessionRole | null {
  const hotStandby = params.get("in_hot_standby");
  const readOnly = params.get("default_transaction_read_only");
  if (hotStandby === undefined || readOnly === undefined) return null;
  const standby = hotStandby === "on";
  return { standby, readOnly: standby || readOnly === "on" };
}

/** The server's role: reported at login when it can be, else asked with ROLE_QUERY. Rejects when the query fails. */
export function sessionRole(server: Server): Promise<SessionRole> {
  const reported = reportedRole(server.params);
  if (reported) return Promise.resolve(reported);
  return new Promise((resolve, reject) => {
    server.runInternal(ROLE_QUERY, (error, rows) => {
      const row = rows[0];
      if (error !== null || !row) return reject(new Error(`could not read the session's role: ${error?.message ?? "no row"}`));
      const standby = row[0] === "t";
      resolve({ standby, readOnly: standby || row[1] === "on" });
    });
  });
}

/** Does a session of this role satisfy target_session_attrs? prefer-standby takes anything (standbys first: see order). */
export function satisfies(attrs: TargetSessionAttrs, role: SessionRole): boolean {
  switch (attrs) {
    case "read-write":
      return !role.readOnly;
    case "read-only":
      return role.readOnly;
    case "primary":
      return !role.standby;
    case "standby":
      return role.standby;
    case "prefer-standby":
    case "any":
      return true;
  }
}

/** For logs and errors: what libpq would say the session is. */
export function describeRole(role: SessionRole): string {
  return role.standby ? "a standby (in hot standby)" : role.readOnly ? "read-only (default_transaction_read_only)" : "a read-write primary";
}
