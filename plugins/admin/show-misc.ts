// SHOW LISTS, SHOW VERSION, SHOW PLUGINS and SHOW HELP.
import { Backend, commandComplete, MessageWriter } from "../../plugin-sdk/index.ts";
import type { AdminEnv } from "./env.ts";
import { poolViews } from "./pool-view.ts";
import { columns, type Table } from "./table.ts";

function count(items: Iterable<unknown>): number {
  let n = 0;
  for (const _ of items) n++;
  return n;
}

export function showLists(env: AdminEnv): Table {
  const { api } = env;
  const views = poolViews(api);
  const dbs = new Set<string>(Object.keys(api.config.databases).filter((n) => n !== "*"));
  const users = new Set<string>(Object.keys(api.config.users));
  for (const v of views) {
    dbs.add(v.database);
    users.add(v.user);
  }
  const peers = api.worker.count > 1 ? api.worker.count : 0; // the workers (SHOW PEERS)
  const list: Array<[string, number]> = [
    ["databases", dbs.size + 1], // + the console's own database
    ["users", users.size],
    ["peers", peers],
    ["pools", views.length + 1],
    ["peer_pools", peers],
    ["free_clients", 0], // pgbun does not keep freed connection objects around
    ["used_clients", count(api.clients()) - api.clientCounts.login],
    ["login_clients", api.clientCounts.login],
    ["free_servers", 0],
    ["used_servers", count(api.servers())],
    ["dns_names", 0],
    ["dns_zones", 0],
    ["dns_queries", 0],
    ["dns_pending", 0],
  ];
  return { columns: columns("list", "#items"), rows: list };
}

export function showVersion(env: AdminEnv): Table {
  return { columns: columns("version"), rows: [[`pgbun ${env.api.version}`]] };
}

/** SHOW PLUGINS (pgbun's): every loaded plugin in tap order, what it provides and the hooks it tapped. */
export function showPlugins(env: AdminEnv): Table {
  const rows = env.api.plugins().map((p) => [p.name, p.specifier, p.provides.join(","), p.taps.join(",")]);
  return { columns: columns("name", "specifier", "provides", "taps"), rows };
}

/** PgBouncer 1.25's lines, then pgbun's SHOW PLUGINS. */
const HELP = [
  "",
  "\tSHOW HELP|CONFIG|DATABASES|POOLS|CLIENTS|SERVERS|USERS|VERSION",
  "\tSHOW PEERS|PEER_POOLS",
  "\tSHOW FDS|SOCKETS|ACTIVE_SOCKETS|LISTS|MEM|STATE",
  "\tSHOW DNS_HOSTS|DNS_ZONES",
  "\tSHOW STATS|STATS_TOTALS|STATS_AVERAGES|TOTALS",
  "\tSET key = arg",
  "\tRELOAD",
  "\tPAUSE [<db>]",
  "\tRESUME [<db>]",
  "\tDISABLE <db>",
  "\tENABLE <db>",
  "\tRECONNECT [<db>]",
  "\tKILL [<db>]",
  "\tKILL_CLIENT <client_id>",
  "\tSUSPEND",
  "\tSHUTDOWN",
  "\tSHUTDOWN WAIT_FOR_SERVERS|WAIT_FOR_CLIENTS",
  "\tWAIT_CLOSE [<db>]",
  "\tSHOW PLUGINS -- pgbun's: the loaded plugins, what they provide and tap",
];

/** The lines of what other plugins added: `SHOW NAME` or `KEYWORD`, with their doc. */
function addedHelp(env: AdminEnv): string[] {
  const line = (usage: string, doc: string) => `\t${usage}${doc ? ` -- ${doc}` : ""}`;
  return [
    ...[...env.extensions.shows.values()].map((s) => line(`SHOW ${s.name.toUpperCase()}`, s.doc)),
    ...[...env.extensions.commands.values()].map((c) => line(c.keyword.toUpperCase(), c.doc)),
  ];
}

/** PgBouncer answers SHOW HELP with a NOTICE ("Console usage", the commands in DETAIL) and the tag SHOW. */
export function showHelp(env: AdminEnv): Buffer {
  const w = new MessageWriter(512).begin(Backend.NoticeResponse);
  w.int8(0x53).cstring("NOTICE"); // S
  w.int8(0x56).cstring("NOTICE"); // V
  w.int8(0x43).cstring("00000"); // C
  w.int8(0x4d).cstring("Console usage"); // M
  w.int8(0x44).cstring([...HELP, ...addedHelp(env)].join("\n")); // D
  const notice = Buffer.from(w.int8(0).end().finish());
  return Buffer.concat([notice, commandComplete("SHOW")]);
}
