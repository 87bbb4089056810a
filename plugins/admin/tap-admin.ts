// The admin console's taps: login and authorization, every message of its clients, DISABLE and PAUSE in front of the pool.
import { Action, Frontend, SqlState, Stage, type Client, type MessageContext, type MessageResult, type PluginApi } from "../../plugin-sdk/index.ts";
import { ADMIN_DATABASES, PLUGIN_NAME, type AdminEnv } from "./env.ts";
import { AdminSession, roleOf, type AdminRole } from "./session.ts";

/** Every type a console client may send; Terminate is left to the core, anything else fails as "no server". */
const CONSOLE_TYPES = [
  Frontend.Query,
  Frontend.Parse,
  Frontend.Bind,
  Frontend.Describe,
  Frontend.Execute,
  Frontend.Close,
  Frontend.Sync,
  Frontend.Flush,
  Frontend.FunctionCall,
];

/** needServer's answer when this tap queued the client itself: it stops the chain before the pool's tap. */
const PARKED = null;

/** Parameters the console reports at login, as PgBouncer's console does (the client's own values win). */
function welcomeParams(env: AdminEnv, role: AdminRole): Map<string, string> {
  return new Map([
    ["server_version", `${env.api.version}/pgbun`],
    ["server_encoding", "UTF8"],
    ["client_encoding", "UTF8"],
    ["DateStyle", "ISO"],
    ["TimeZone", "UTC"],
    ["standard_conforming_strings", "on"],
    ["integer_datetimes", "on"],
    ["is_superuser", role === "admin" ? "on" : "off"],
  ]);
}

export function tapAdmin(api: PluginApi, env: AdminEnv, admins: Set<Client>): void {
  const { control } = env;
  const h = api.hooks;

  // first, so no other plugin sees a console login as a pooled one
  h.startup.tap({ name: PLUGIN_NAME, stage: Stage.Console }, (client) => {
    if (ADMIN_DATABASES.has(client.database)) {
      const role = roleOf(api, client.user);
      if (role === null) return { code: SqlState.InvalidAuthorizationSpecification, message: "not allowed to connect to the admin console" };
      client.virtual = true;
      client.welcomeParams = welcomeParams(env, role);
      client.data[PLUGIN_NAME] = new AdminSession(client, role, env);
      admins.add(client);
      return undefined;
    }
    if (control.isDisabled(client.database)) {
      return { code: SqlState.CannotConnectNow, message: `database does not allow connections: ${client.database}` };
    }
    return undefined;
  });
  // a client routed by a startup tap (api.route) is checked again against the database it was routed to
  h.authenticated.tap({ name: PLUGIN_NAME, stage: Stage.Console }, (client) => {
    const db = client.poolDatabase;
    if (client.virtual || db === client.database || !control.isDisabled(db)) return undefined;
    return { code: SqlState.CannotConnectNow, message: `database does not allow connections: ${db}` };
  });

  /** Takes a console client's message before any other plugin (called for virtual clients only, see TapOptions). */
  const consoleTap = (ctx: MessageContext): MessageResult => {
    const client = ctx.client;
    if (!client.virtual) return undefined;
    const session = client.data[PLUGIN_NAME];
    if (!(session instanceof AdminSession)) return undefined;
    session.message(ctx.type, ctx.buf, ctx.start, ctx.end);
    const answer = session.takeOutput();
    if (answer) ctx.sendToClient(answer);
    return Action.Drop;
  };
  // only the console's own clients call it: a pooled client's messages do not pass through it at all
  for (const type of CONSOLE_TYPES) api.onClientMessage(type, consoleTap, { stage: Stage.Console, virtualClients: true });

  // PAUSE/KILL: a client of a paused database waits here instead of getting a server. Tapped at the first pause
  // (control.onPause runs before it is in force), so that until then a hand-out does not call it
  let parkTapped = false;
  const paused = (client: Client) => control.anyPaused && control.isPaused(client.poolDatabase);
  control.onPause = () => {
    if (parkTapped) return;
    parkTapped = true;
    h.needServer.tap({ name: PLUGIN_NAME, stage: Stage.Answer }, (client) => {
      if (!paused(client)) return undefined;
      env.stats()?.markWaiting(client);
      control.park(client);
      return PARKED;
    });
    // nor is an idle server handed out on the side (a named Parse looks for one): the client's next need of one parks it
    h.peekServer.tap({ name: PLUGIN_NAME, stage: Stage.Answer }, (client) => (paused(client) ? null : undefined));
  };

  h.clientClosed.tap(PLUGIN_NAME, (client) => {
    if (client.virtual) {
      admins.delete(client);
      const session = client.data[PLUGIN_NAME];
      if (session instanceof AdminSession) session.closed();
    } else if (control.parkedCount > 0) control.forget(client);
  });
  // a release or close may complete a PAUSE or WAIT_CLOSE (checked once the pool has taken the server); the release
  // tap is made at the first wait (control.onWait), so that until then a release does not call it
  let releaseTapped = false;
  control.onWait = () => {
    if (releaseTapped) return;
    releaseTapped = true;
    h.serverReleased.tap({ name: PLUGIN_NAME, stage: Stage.Observe }, () => {
      if (control.waiting) control.schedulePoll();
      return undefined;
    });
  };
  h.serverClosed.tap(PLUGIN_NAME, () => {
    if (control.waiting) control.schedulePoll();
  });
}
