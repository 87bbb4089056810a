// Example pgbun configuration: PgBouncer's setting names, databases, users, and the plugin pipeline in order.
/** @type {import("./core/config/load.ts").PgbunConfig | object} */
export default {
  pgbun: {
    listen_addr: "127.0.0.1",
    listen_port: 6432,
    pool_mode: "transaction", // session | transaction | statement
    default_pool_size: 20,
    max_client_conn: 10000,
    auth_type: "trust",
    admin_users: ["postgres"],
    server_reset_query: "DISCARD ALL",
    query_wait_timeout: 120,
    max_prepared_statements: 200,
    session_state: "pin", // pin | error | ignore: what transaction mode does with session state
    workers: 1, // or "auto": one process per core sharing the port
    // Order is tap order; built-ins not listed here are added for any capability nothing listed provides.
    plugins: [
      "pgbun:transaction-detection",
      "pgbun:parameter-tracking",
      "pgbun:prepared-statements",
      "pgbun:session-state",
      "pgbun:pool-statement",
      "pgbun:pool",
      ["./examples/audit-log.ts", { slowMs: 100 }],
    ],
  },
  databases: {
    // app = { host, port, dbname, pool_size, pool_mode, ... } or a PgBouncer-style "host=... port=..." string
    "*": { host: "127.0.0.1", port: 5432 },
  },
  users: {},
};
