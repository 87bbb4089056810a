// The check after resetting a server its client left with session state: one query that proves nothing survived.

/**
 * What a session can keep that the next client must not meet. DISCARD ALL undoes all of it, but
 * server_reset_query may be something weaker, and a server that kept any of it is closed rather than handed on.
 * Session-level settings count too: once the reset ran, pgbun forgets what it had applied to the server.
 */
export const LEFTOVER_QUERY = `SELECT
 (SELECT count(*) FROM pg_catalog.pg_locks WHERE locktype = 'advisory' AND pid = pg_catalog.pg_backend_pid()),
 (SELECT count(*) FROM pg_catalog.pg_class WHERE relnamespace = pg_catalog.pg_my_temp_schema()),
 (SELECT count(*) FROM pg_catalog.pg_cursors),
 (SELECT count(*) FROM pg_catalog.pg_listening_channels()),
 (SELECT count(*) FROM pg_catalog.pg_prepared_statements),
 (SELECT count(*) FROM pg_catalog.pg_settings WHERE source = 'session'),
 current_user::text, session_user::text`;

/** A server_reset_query that is DISCARD ALL: nothing the check looks for survives it, so it is not run. */
export const DISCARDS_ALL = /^\s*discard\s+all\s*;?\s*$/i;

const COUNTED = ["advisory locks", "temporary relations", "cursors", "LISTEN channels", "prepared statements", "session settings"] as const;

/** What the check's rows show survived the reset (a reason for the log), or null when the session is clean. */
export function leftover(rows: Array<Array<string | null>>, loginUser: string): string | null {
  const row = rows[0];
  if (rows.length !== 1 || row === undefined || row.length !== COUNTED.length + 2) return "unexpected answer to the state check";
  const left: string[] = [];
  for (let i = 0; i < COUNTED.length; i++) if (row[i] !== "0") left.push(`${row[i]} ${COUNTED[i]}`);
  const currentUser = row[COUNTED.length];
  const sessionUser = row[COUNTED.length + 1];
  if (currentUser !== loginUser || sessionUser !== loginUser) left.push(`running as ${currentUser} (session ${sessionUser}), not ${loginUser}`);
  return left.length === 0 ? null : left.join(", ");
}
