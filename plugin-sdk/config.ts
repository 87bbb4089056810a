// The configuration as plugins see it: global settings by PgBouncer's names, [databases] and [users] entries.

export const POOL_MODES = ["session", "transaction", "statement"] as const;
export type PoolMode = (typeof POOL_MODES)[number];

export const AUTH_TYPES = ["trust", "any", "md5", "scram-sha-256", "plain", "cert", "hba", "pam"] as const;
export type AuthType = (typeof AUTH_TYPES)[number];
/** The auth_type values the core can serve today; the rest are accepted names that fail validation. */
export const IMPLEMENTED_AUTH_TYPES: readonly AuthType[] = ["trust", "any", "plain", "md5", "scram-sha-256", "hba", "cert"];

export const SSL_MODES = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] as const;
export type SslMode = (typeof SSL_MODES)[number];

export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const LOG_FORMATS = ["auto", "json", "pretty"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export const SESSION_STATE_MODES = ["pin", "verify", "error", "ignore"] as const;
export type SessionStateMode = (typeof SESSION_STATE_MODES)[number];

/** Every global setting of the `[pgbun]` (alias `[pgbouncer]`) section, by PgBouncer's name. */
export interface Settings {
  listen_addr: string;
  listen_port: number;
  unix_socket_dir: string;
  unix_socket_mode: number;
  unix_socket_group: string;
  listen_backlog: number;
  so_reuseport: boolean;
  peer_id: number;
  pool_mode: PoolMode;
  max_client_conn: number;
  default_pool_size: number;
  min_pool_size: number;
  reserve_pool_size: number;
  reserve_pool_timeout: number;
  max_db_connections: number;
  max_user_connections: number;
  max_db_client_connections: number;
  max_user_client_connections: number;
  server_round_robin: boolean;
  auth_type: AuthType;
  auth_file: string;
  auth_hba_file: string;
  auth_user: string;
  auth_dbname: string;
  auth_query: string;
  auth_failure_delay: number;
  admin_users: string[];
  stats_users: string[];
  scram_iterations: number;
  server_reset_query: string;
  server_reset_query_always: boolean;
  server_check_query: string;
  server_check_delay: number;
  server_lifetime: number;
  server_idle_timeout: number;
  autodb_idle_timeout: number;
  server_connect_timeout: number;
  server_login_retry: number;
  client_login_timeout: number;
  query_timeout: number;
  query_wait_timeout: number;
  query_wait_notify: number;
  cancel_wait_timeout: number;
  client_idle_timeout: number;
  idle_transaction_timeout: number;
  transaction_timeout: number;
  max_prepared_statements: number;
  track_extra_parameters: string[];
  ignore_startup_parameters: string[];
  application_name_add_host: boolean;
  client_tls_sslmode: SslMode;
  client_tls_key_file: string;
  client_tls_cert_file: string;
  client_tls_ca_file: string;
  client_tls_protocols: string;
  client_tls_ciphers: string;
  server_tls_sslmode: SslMode;
  server_tls_ca_file: string;
  server_tls_cert_file: string;
  server_tls_key_file: string;
  server_tls_protocols: string;
  server_tls_ciphers: string;
  tcp_keepalive: boolean;
  tcp_user_timeout: number;
  pkt_buf: number;
  max_packet_size: number;
  sbuf_loopcnt: number;
  stats_period: number;
  stats_listen_addr: string;
  stats_listen_port: number;
  log_connections: boolean;
  log_disconnections: boolean;
  log_pooler_errors: boolean;
  log_stats: boolean;
  workers: number | "auto";
  log_level: LogLevel;
  log_format: LogFormat;
  session_state: SessionStateMode;
}

export type SettingName = keyof Settings;

/** One `[databases]` entry, normalized. `name` is what clients ask for; `"*"` is the fallback. */
/** libpq's target_session_attrs values. */
export const TARGET_SESSION_ATTRS = ["any", "read-write", "read-only", "primary", "standby", "prefer-standby"] as const;
export type TargetSessionAttrs = (typeof TARGET_SESSION_ATTRS)[number];
/** PgBouncer 1.25's (and libpq's) load_balance_hosts values. */
export const LOAD_BALANCE_HOSTS = ["disable", "round-robin"] as const;
export type LoadBalanceHosts = (typeof LOAD_BALANCE_HOSTS)[number];

export interface DatabaseEntry {
  name: string;
  /** One or more hosts (a comma list in the config); a value starting with "/" is a Unix socket directory. */
  host: string[];
  /** The first host's port (every host's, unless `ports` is set). */
  port: number;
  /**
   * Each host's port, in `host`'s order, when they differ (`host=a:5432,b:5433`, or `port=5432,5433` as libpq);
   * absent when every host uses `port`.
   */
  ports?: number[];
  /** Which host of a multi-host entry a server may log in to (libpq's meanings; pgbun:routing checks it). */
  target_session_attrs?: TargetSessionAttrs;
  /** round-robin (default, as PgBouncer): each new server login starts at the next host; disable: stays on one until it fails. */
  load_balance_hosts?: LoadBalanceHosts;
  /** Database on the server; undefined only for "*", meaning "the database the client asked for". */
  dbname?: string;
  user?: string;
  password?: string;
  pool_size?: number;
  pool_mode?: PoolMode;
  min_pool_size?: number;
  reserve_pool_size?: number;
  max_db_connections?: number;
  connect_query?: string;
  client_encoding?: string;
  datestyle?: string;
  timezone?: string;
  application_name?: string;
}

/** One `[users]` entry: per-user overrides of global settings. */
export interface UserEntry {
  name: string;
  pool_mode?: PoolMode;
  pool_size?: number;
  max_user_connections?: number;
  query_timeout?: number;
  idle_transaction_timeout?: number;
  client_idle_timeout?: number;
  reserve_pool_size?: number;
  transaction_timeout?: number;
}

export interface PluginSpec {
  specifier: string;
  options: Record<string, unknown>;
}

export interface PgbunConfig {
  settings: Settings;
  databases: Record<string, DatabaseEntry>;
  users: Record<string, UserEntry>;
  /** Plugins in order, or null when the config names none (the core then loads its defaults). */
  plugins: PluginSpec[] | null;
  /** Absolute path of the config file, or null when running on defaults. */
  file: string | null;
  /** Directory of the file (relative plugin paths start here), or the working directory. */
  dir: string;
}
