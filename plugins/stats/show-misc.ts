// SHOW LISTS, SHOW VERSION and SHOW HELP.
import { Backend } from "../../plugin-sdk/protocol/codes.ts";
import { commandComplete, MessageWriter } from "../../plugin-sdk/protocol/writer.ts";
import type { AdminEnv } from "./env.ts";
import { poolViews } from "./pool-view.ts";
import { columns, type Table } from "./table.ts";

export function showLists(env: AdminEnv): Table {
  const { core } = env;
  const views = poolViews(core);
  const dbs = new Set<string>(Object.keys(core.config.databases).filter((n) => n !== "*"));
  const users = new Set<string>(Object.keys(core.config.users));
  for (const v of views) {
    dbs.add(v.database);
    users.add(v.user);
  }
  const list: Array<[string, number]> = [
    ["databases", dbs.size + 1], // + the console's own database
    ["users", users.size],
    ["peers", 0],
    ["pools", views.length + 1],
    ["peer_pools", 0],
    ["free_clients", 0], // pgbun does not keep freed connection objects around
    ["used_clients", core.clients.size - core.clientCounts.login],
    ["login_clients", core.clientCounts.login],
    ["free_servers", 0],
    ["used_servers", core.servers.size],
    ["dns_names", 0],
    ["dns_zones", 0],
    ["dns_queries", 0],
    ["dns_pending", 0],
  ];
  return { columns: columns("list", "#items"), rows: list };
}

export function showVersion(env: AdminEnv): Table {
  return { columns: columns("version"), rows: [[`pgbun ${env.version}`]] };
}

const HELP = [
  "",
  "\tSHOW HELP|CONFIG|DATABASES|POOLS|CLIENTS|SERVERS|USERS|VERSION",
  "\tSHOW LISTS",
  "\tSHOW STATS|STATS_TOTALS|STATS_AVERAGES",
  "\tRELOAD",
  "\tPAUSE [<db>]",
  "\tRESUME [<db>]",
  "\tDISABLE <db>",
  "\tENABLE <db>",
  "\tRECONNECT [<db>]",
  "\tKILL <db>",
  "\tKILL_CLIENT <id>",
  "\tSHUTDOWN",
  "\tWAIT_CLOSE [<db>]",
].join("\n");

/** PgBouncer answers SHOW HELP with a NOTICE ("Console usage", the commands in DETAIL) and the tag SHOW. */
export function showHelp(): Buffer {
  const w = new MessageWriter(512).begin(Backend.NoticeResponse);
  w.int8(0x53).cstring("NOTICE"); // S
  w.int8(0x56).cstring("NOTICE"); // V
  w.int8(0x43).cstring("00000"); // C
  w.int8(0x4d).cstring("Console usage"); // M
  w.int8(0x44).cstring(HELP); // D
  const notice = Buffer.from(w.int8(0).end().finish());
  return Buffer.concat([notice, commandComplete("SHOW")]);
}
