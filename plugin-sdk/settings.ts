// The global settings table: every setting's PgBouncer name, kind, default and doc (what `pgbun check` prints).
import { AUTH_TYPES, LOG_FORMATS, LOG_LEVELS, POOL_MODES, SESSION_STATE_MODES, SSL_MODES, type Settings, type SettingName } from "./config.ts";

/** How a setting's value is written and checked. Durations are seconds unless the doc says otherwise. */
export type SettingKind =
  | { readonly type: "int"; readonly min?: number; readonly max?: number; readonly auto?: boolean; readonly octal?: boolean; readonly why?: string }
  | { readonly type: "seconds"; readonly min?: number; readonly why?: string }
  | { readonly type: "bool" }
  | { readonly type: "string" }
  | { readonly type: "enum"; readonly values: readonly string[] }
  | { readonly type: "list" };

export interface SettingDef<T> {
  readonly kind: SettingKind;
  readonly default: T;
  readonly doc: string;
}

const INT: SettingKind = { type: "int", min: 0 };
const SECONDS: SettingKind = { type: "seconds" };
const BOOL: SettingKind = { type: "bool" };
const STRING: SettingKind = { type: "string" };
const LIST: SettingKind = { type: "list" };
const POOL_MODE: SettingKind = { type: "enum", values: POOL_MODES };
const SSL_MODE: SettingKind = { type: "enum", values: SSL_MODES };

const DEFAULT_AUTH_QUERY =
  "SELECT rolname, CASE WHEN rolvaliduntil < now() THEN NULL ELSE rolpassword END FROM pg_authid " +
  "WHERE rolname=$1 AND rolcanlogin";

/** The table, in the order `pgbun check` prints it. The mapped type keeps it in step with Settings. */
export const SETTINGS: { readonly [K in SettingName]: SettingDef<Settings[K]> } = {
  listen_addr: { kind: STRING, default: "127.0.0.1", doc: "TCP address(es) to listen on, comma-separated; * for all; empty: the Unix socket alone (as in PgBouncer)" },
  listen_port: { kind: { type: "int", min: 0, max: 65535 }, default: 6432, doc: "TCP port to listen on (0: any free port, for tests)" },
  unix_socket_dir: { kind: STRING, default: "/tmp", doc: "Directory of the Unix socket .s.PGSQL.<listen_port>; empty disables it (with workers > 1, worker 0 alone listens there)" },
  unix_socket_mode: { kind: { type: "int", min: 0, max: 0o777, octal: true }, default: 0o777, doc: "Permissions of the Unix socket; a string with a leading 0 is octal (\"0770\"), as in PgBouncer" },
  unix_socket_group: { kind: STRING, default: "", doc: "Group (name or gid) the Unix socket is given; empty keeps the process's" },
  listen_backlog: { kind: INT, default: 128, doc: "Backlog passed to listen(2)" },
  so_reuseport: { kind: BOOL, default: false, doc: "Set SO_REUSEPORT so several processes share the port" },
  peer_id: { kind: INT, default: 0, doc: "This process's id among peers, for cancel forwarding; 0 disables" },
  pool_mode: { kind: POOL_MODE, default: "session", doc: "When a server goes back to the pool: session, transaction, statement" },
  max_client_conn: { kind: INT, default: 100, doc: "Maximum number of client connections (each worker's own); 0 = unlimited, where PgBouncer's 0 admits none" },
  default_pool_size: { kind: INT, default: 20, doc: "Server connections per user/database pair" },
  min_pool_size: { kind: INT, default: 0, doc: "Keep at least this many server connections per pool" },
  reserve_pool_size: { kind: INT, default: 0, doc: "Extra server connections a pool may open when clients wait" },
  reserve_pool_timeout: { kind: SECONDS, default: 5, doc: "Seconds a client waits before the reserve pool is used; 0 = reserve pool disabled" },
  max_db_connections: { kind: INT, default: 0, doc: "Server connections per database across users; 0 = unlimited" },
  max_user_connections: { kind: INT, default: 0, doc: "Server connections per user across databases; 0 = unlimited" },
  max_db_client_connections: { kind: INT, default: 0, doc: "Client connections per database; 0 = unlimited" },
  max_user_client_connections: { kind: INT, default: 0, doc: "Client connections per user; 0 = unlimited" },
  server_round_robin: { kind: BOOL, default: false, doc: "Reuse idle servers round-robin instead of LIFO" },
  auth_type: { kind: { type: "enum", values: AUTH_TYPES }, default: "trust", doc: "How clients authenticate" },
  auth_file: { kind: STRING, default: "", doc: "File with user names and secrets" },
  auth_hba_file: { kind: STRING, default: "", doc: "pg_hba.conf-style file used when auth_type is hba" },
  auth_user: { kind: STRING, default: "", doc: "User that runs auth_query against the server" },
  auth_dbname: { kind: STRING, default: "", doc: "Database auth_query connects to; empty = the client's database" },
  auth_query: { kind: STRING, default: DEFAULT_AUTH_QUERY, doc: "Query that looks up a user's secret" },
  auth_failure_delay: { kind: SECONDS, default: 1, doc: "Seconds between answers to failed password logins from one address, once 5 in a row have been answered at once; 0 disables" },
  admin_users: { kind: LIST, default: [], doc: "Users allowed every admin console command" },
  stats_users: { kind: LIST, default: [], doc: "Users allowed read-only SHOW commands in the admin console" },
  scram_iterations: { kind: { type: "int", min: 1 }, default: 4096, doc: "PBKDF2 iterations for SCRAM secrets pgbun creates" },
  server_reset_query: { kind: STRING, default: "DISCARD ALL", doc: "Query run when a server is released in session mode, and in any mode after a client left session state behind" },
  server_reset_query_always: { kind: BOOL, default: false, doc: "Run server_reset_query in every pool mode" },
  server_check_query: { kind: STRING, default: "", doc: "Health check before reuse; empty sends an empty query" },
  server_check_delay: { kind: SECONDS, default: 30, doc: "Seconds a server may idle before it is health-checked" },
  server_lifetime: { kind: SECONDS, default: 3600, doc: "Close a server connection after this many seconds; 0 = used only once, then closed" },
  server_idle_timeout: { kind: SECONDS, default: 600, doc: "Close a server idle this many seconds; 0 = never" },
  autodb_idle_timeout: { kind: SECONDS, default: 3600, doc: 'Drop a pool made for the "*" database once unused this many seconds; 0 = never' },
  server_connect_timeout: { kind: SECONDS, default: 15, doc: "Seconds allowed for connect and login to a server" },
  server_login_retry: { kind: SECONDS, default: 15, doc: "Longest wait between failed server logins of a pool (pgbun:backoff doubles from 100 ms up to it; a permanent failure such as a wrong password waits about this long)" },
  client_login_timeout: { kind: SECONDS, default: 60, doc: "Seconds a client has to finish login" },
  query_timeout: { kind: SECONDS, default: 0, doc: "Cancel queries running longer than this; 0 = off" },
  query_wait_timeout: { kind: SECONDS, default: 120, doc: "Seconds a client may wait for a server; 0 = forever" },
  query_wait_notify: { kind: SECONDS, default: 5, doc: "Send a NOTICE to a client queued for a server longer than this, once per wait (PgBouncer 1.25); 0 = never" },
  cancel_wait_timeout: {
    kind: { type: "seconds", min: 0.001, why: "PgBouncer's 0 waits without limit; pgbun has no cancel queue, and a server would stay out of its pool forever" },
    default: 10,
    doc: "Seconds a cancelled server is kept out of its pool waiting for PostgreSQL to take the CancelRequest (connect, send, PostgreSQL closes); then an unsent cancel is dropped and the server returns, an unconfirmed one gets its server closed. 0 is refused",
  },
  client_idle_timeout: { kind: SECONDS, default: 0, doc: "Close clients idle this many seconds; 0 = never" },
  idle_transaction_timeout: { kind: SECONDS, default: 0, doc: "Close clients idle in a transaction this long; 0 = never" },
  transaction_timeout: { kind: SECONDS, default: 0, doc: "Close clients whose transaction lasts longer; 0 = never" },
  max_prepared_statements: {
    // PgBouncer's 0 turns tracking off; pgbun never runs named statements untracked outside session mode (rule one)
    kind: { type: "int", min: 1, why: "tracking cannot be turned off: untracked, clients' statements of the same name would collide on a server and run each other's queries" },
    default: 200,
    doc: "Prepared statements each server keeps for clients in transaction and statement mode (least recently used closed beyond it); at least 1: PgBouncer's 0 (off) is refused",
  },
  track_extra_parameters: { kind: LIST, default: ["IntervalStyle"], doc: "Parameters tracked and replayed beyond the built-in ones" },
  ignore_startup_parameters: { kind: LIST, default: [], doc: "Startup parameters accepted and not passed on" },
  application_name_add_host: { kind: BOOL, default: false, doc: "Append the client's address to application_name" },
  client_tls_sslmode: { kind: SSL_MODE, default: "disable", doc: "TLS towards clients: disable (refuse SSLRequest), allow/prefer (TLS when asked), require (plaintext refused), verify-ca/verify-full (a client certificate signed by client_tls_ca_file required); Unix-socket clients never use TLS" },
  client_tls_key_file: { kind: STRING, default: "", doc: "Private key (PEM) of pgbun's certificate towards clients; re-read on reload" },
  client_tls_cert_file: { kind: STRING, default: "", doc: "Certificate (PEM) pgbun presents to clients; re-read on reload" },
  client_tls_ca_file: { kind: STRING, default: "", doc: "CA (PEM) client certificates are verified against; when set, clients are asked for one" },
  client_tls_protocols: { kind: STRING, default: "secure", doc: "TLS versions offered to clients: tlsv1.0, tlsv1.1, tlsv1.2, tlsv1.3, comma-separated, or all, secure (tlsv1.2,tlsv1.3), legacy (all)" },
  client_tls_ciphers: { kind: STRING, default: "default", doc: "TLS 1.2 cipher list towards clients: default/secure, compat/legacy, normal, fast, insecure/all, or an OpenSSL cipher list" },
  server_tls_sslmode: { kind: SSL_MODE, default: "prefer", doc: "TLS towards servers: disable, allow/prefer (TLS when the server offers it), require (no plaintext), verify-ca (certificate signed by server_tls_ca_file), verify-full (and the host name matches)" },
  server_tls_ca_file: { kind: STRING, default: "", doc: "CA (PEM) server certificates are verified against (verify-ca, verify-full)" },
  server_tls_cert_file: { kind: STRING, default: "", doc: "Client certificate (PEM) pgbun presents to servers" },
  server_tls_key_file: { kind: STRING, default: "", doc: "Private key (PEM) of server_tls_cert_file" },
  server_tls_protocols: { kind: STRING, default: "secure", doc: "TLS versions allowed towards servers (as client_tls_protocols)" },
  server_tls_ciphers: { kind: STRING, default: "default", doc: "TLS 1.2 cipher list towards servers (as client_tls_ciphers)" },
  tcp_keepalive: { kind: BOOL, default: true, doc: "TCP keepalive on client and server sockets, with the OS's idle time, interval and count (new sockets after a reload)" },
  tcp_user_timeout: { kind: INT, default: 0, doc: "TCP_USER_TIMEOUT in milliseconds (as in PgBouncer); 0 = OS default" },
  pkt_buf: { kind: { type: "int", min: 512 }, default: 4096, doc: "Per-socket read buffer size in bytes" },
  max_packet_size: { kind: { type: "int", min: 1024, max: 2147483647 }, default: 2147483647, doc: "Largest protocol message accepted, in bytes" },
  sbuf_loopcnt: { kind: INT, default: 5, doc: "Reads per socket per event loop turn, for fairness; 0 = no limit" },
  stats_period: { kind: { type: "seconds", min: 1 }, default: 60, doc: "Seconds between stats averages and log_stats lines" },
  stats_listen_addr: { kind: STRING, default: "127.0.0.1", doc: "Address(es) of the metrics and dashboard HTTP listener (pgbun:metrics), comma-separated; * for all; empty disables it" },
  stats_listen_port: { kind: { type: "int", min: 0, max: 65535 }, default: 0, doc: "Port of the metrics and dashboard HTTP listener (/metrics, /healthz, /readyz, /); 0 disables it" },
  log_connections: { kind: BOOL, default: true, doc: "Log successful logins" },
  log_disconnections: { kind: BOOL, default: true, doc: "Log disconnections with reasons" },
  log_pooler_errors: { kind: BOOL, default: true, doc: "Log errors the pooler sends to clients" },
  log_stats: { kind: BOOL, default: true, doc: "Log aggregated stats every stats_period" },
  workers: { kind: { type: "int", min: 1, auto: true }, default: 1, doc: "Worker processes sharing the port; auto = one per CPU" },
  log_level: { kind: { type: "enum", values: LOG_LEVELS }, default: "info", doc: "Lowest level that is logged" },
  log_format: { kind: { type: "enum", values: LOG_FORMATS }, default: "auto", doc: "Log output: json, pretty, or auto (pretty on a TTY)" },
  session_state: { kind: { type: "enum", values: SESSION_STATE_MODES }, default: "pin", doc: "Session state in transaction mode: pin the server; verify (pin, and ask the server after every transaction not proven harmless); error; or ignore" },
};

export const SETTING_NAMES = Object.keys(SETTINGS) as SettingName[];

export function isSettingName(name: string): name is SettingName {
  return Object.hasOwn(SETTINGS, name);
}

/** A fresh Settings object holding every default (lists are copied, so callers may mutate). */
export function defaultSettings(): Settings {
  const out: Record<string, unknown> = {};
  for (const name of SETTING_NAMES) {
    const d = SETTINGS[name].default;
    out[name] = Array.isArray(d) ? [...d] : d;
  }
  return out as unknown as Settings;
}
