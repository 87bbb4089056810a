// Built-in plugin "pgbun:backoff": after a failed server login, when a pool tries again (exponential, with jitter).
import { SqlState, type LoginFailure, type LoginRetry, type PgbunPlugin, type PoolInfo } from "../../plugin-sdk/index.ts";

const NAME = "pgbun:backoff";

/**
 * Failures that will not pass by themselves: the password, the role or the database is wrong. Waiting clients get
 * them at once, and PostgreSQL is asked again only after server_login_retry (PgBouncer: once per 15 s).
 */
const PERMANENT: ReadonlySet<string> = new Set([
  SqlState.InvalidPassword, // 28P01 password authentication failed
  SqlState.InvalidAuthorizationSpecification, // 28000 no pg_hba.conf entry, role does not exist
  SqlState.InvalidCatalogName, // 3D000 database does not exist
  SqlState.InvalidParameterValue, // 22023 a [databases] entry's timezone, datestyle ... PostgreSQL refuses
]);

/**
 * XX000: a plugin's fault in a server login, or a server's error without SQLSTATE (which PostgreSQL does not send).
 * Waiting is no use, so waiters are told at once; but it may pass (a plugin's transient fault), so it is remembered
 * only for the usual growing delay, not for server_login_retry.
 */
const FAULT = SqlState.InternalError;

/**
 * Failures that mean PostgreSQL is not there or not ready yet (connect refused, starting up, shutting down): what a
 * restart looks like. A refused connect costs PostgreSQL nothing, so these are retried at least once a second
 * whatever server_login_retry says, and pgbun finds a restarted PostgreSQL within a second.
 */
const RESTART_CODES: ReadonlySet<string> = new Set([SqlState.CannotConnectNow, SqlState.AdminShutdown]);
const RESTART_CAP_MS = 1_000;

export interface BackoffOptions {
  /** The first delay, in ms (then doubled per consecutive failure up to server_login_retry). Default 100. */
  baseMs?: number;
}

/**
 * Server TLS that server_tls_sslmode cannot accept (a certificate that does not verify, a server without TLS under
 * require/verify-*): the configuration or the server's certificate must change first, so it is permanent too. The
 * core reports these without a SQLSTATE of their own (08006 to clients); its wording is matched.
 */
const TLS_REFUSED = /server certificate verification failed|server does not support TLS \(server_tls_sslmode/;

export function isPermanent(f: LoginFailure): boolean {
  if (f.permanent === true) return true; // the core says so: a failed connect_query
  if (f.code !== undefined) return PERMANENT.has(f.code);
  return TLS_REFUSED.test(f.message);
}

function looksLikeRestart(f: LoginFailure): boolean {
  if (f.code !== undefined) return RESTART_CODES.has(f.code);
  return /ECONNREFUSED|connection refused|ENOENT|server closed the connection/i.test(f.message);
}

/**
 * The delay after the n-th consecutive failed login (n >= 1): base * 2^(n-1), capped, with "equal jitter" (half
 * fixed, half random) so that pools, and pgbun workers, that failed together do not all try again together.
 */
export function backoffDelay(n: number, baseMs: number, capMs: number, random: () => number = Math.random): number {
  const exp = Math.min(capMs, baseMs * 2 ** Math.min(Math.max(n - 1, 0), 30));
  return Math.round(exp / 2 + random() * (exp / 2));
}

/** The backoff plugin; replace it with a plugin that `provides: ["backoff"]` and taps serverLoginFailed. */
export default function backoffPlugin(options: BackoffOptions = {}): PgbunPlugin {
  const baseMs = options.baseMs ?? 100;
  return {
    name: NAME,
    provides: ["backoff"],
    apply(api) {
      api.hooks.serverLoginFailed.tap(NAME, (failure: LoginFailure, pool: PoolInfo): LoginRetry => {
        const capMs = Math.max(baseMs, api.config.settings.server_login_retry * 1000);
        if (isPermanent(failure)) return { delay: backoffDelay(Number.MAX_SAFE_INTEGER, capMs, capMs), permanent: true };
        if (failure.code === FAULT) return { delay: backoffDelay(pool.health.consecutiveFailures, baseMs, capMs), permanent: true };
        const cap = looksLikeRestart(failure) ? Math.min(capMs, RESTART_CAP_MS) : capMs;
        return { delay: backoffDelay(pool.health.consecutiveFailures, baseMs, cap), permanent: false };
      });
    },
  };
}
