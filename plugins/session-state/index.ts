// Built-in plugin: session state in transaction mode: SET values follow the client; other state pins its server.
import { Backend, DEALLOCATES_ALL, Frontend, SqlState, TxStatus, cstringEnd, parameterStatus, type Client, type MessageContext, type PgbunPlugin, type PluginApi, type Server, Stage } from "../../plugin-sdk/index.ts";
import { provenHarmless } from "./harmless.ts";
import { mayChangeSessionState } from "./screen.ts";
import { latin1, StatementMarks } from "./statements.ts";
import { knownClean, MIN_REMEMBERED, rememberClean } from "./verdicts.ts";

const NAME = "pgbun:session-state";

/** Statements that may change session state, at the start of a statement. */
const AT_START = /(?:^|;)\s*(?:set|reset|listen|unlisten|prepare|discard|deallocate|declare|load|create\s+(?:(?:global|local)\s+)?temp(?:orary)?)\b/i;
/** Function calls and clauses that may change session state anywhere in a statement. */
const ANYWHERE = /\b(?:set_config|pg_(?:try_)?advisory_(?:un)?lock(?:_shared|_all)?|into\s+(?:temp|temporary)\b)/i;

/** Statements among those that may change a session-level setting (a suspect text without them only pins). */
const TOUCHES_SETTINGS = /(?:^|;)\s*(?:set|reset|discard|load)\b|\bset_config\b/i;
/** `SET [SESSION] a.b` and `set_config('a.b', ...)`: custom settings, which pg_settings does not list. */
const CUSTOM_SET = /\bset\s+(?:session\s+)?([a-z_][a-z0-9_$]*\.[a-z_][a-z0-9_$]*)|set_config\s*\(\s*'([a-z_][a-z0-9_$]*\.[a-z_][a-z0-9_$]*)'/gi;
/** `RESET name`, `RESET ALL`, `DISCARD ALL`: back to the values the client connected with. */
const RESET = /(?:^|;)\s*(?:reset\s+(all\b|[a-z_][a-z0-9_$.]*)|discard\s+all\b)/gi;
const NAME_OK = /^[a-z_][a-z0-9_$]*(\.[a-z_][a-z0-9_$]*)?$/i;

function literal(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/**
 * One query tells what session state the server holds: pins, and settings to carry to the next server.
 * `withSettings` false: only what pins (a pinned client's transaction that screened clean cannot have changed its
 * settings, and pg_settings is most of the query's cost: about 330 of its 550 µs on the server).
 */
function stateQuery(customNames: Iterable<string>, withSettings = true): string {
  const names = [...customNames].filter((n) => NAME_OK.test(n)).map(literal);
  const custom =
    withSettings && names.length
      ? `(SELECT pg_catalog.json_agg(pg_catalog.json_build_array(n, pg_catalog.current_setting(n, true))) FROM pg_catalog.unnest(ARRAY[${names.join(",")}]::text[]) AS n)`
      : "NULL";
  const settings = withSettings ? "(SELECT pg_catalog.json_agg(pg_catalog.json_build_array(name, setting)) FROM pg_catalog.pg_settings WHERE source = 'session')" : "NULL";
  // a session that never used a temporary object has no temporary schema: the catalog scans are skipped
  return `SELECT
 (SELECT count(*) FROM pg_catalog.pg_locks WHERE locktype = 'advisory' AND pid = pg_catalog.pg_backend_pid() AND granted),
 CASE WHEN pg_catalog.pg_my_temp_schema() = 0 THEN 0 ELSE (SELECT count(*) FROM pg_catalog.pg_class WHERE relnamespace = pg_catalog.pg_my_temp_schema()) END,
 CASE WHEN pg_catalog.pg_my_temp_schema() = 0 THEN 0 ELSE (SELECT count(*) FROM pg_catalog.pg_proc WHERE pronamespace = pg_catalog.pg_my_temp_schema())
   + (SELECT count(*) FROM pg_catalog.pg_type WHERE typnamespace = pg_catalog.pg_my_temp_schema()) END,
 (SELECT count(*) FROM pg_catalog.pg_cursors WHERE is_holdable),
 (SELECT count(*) FROM pg_catalog.pg_listening_channels()),
 (SELECT count(*) FROM pg_catalog.pg_prepared_statements WHERE from_sql),
 current_user::text, session_user::text,
 ${settings},
 ${custom}`;
}

/** Puts back the connection-time value of each reset setting, unless the reset was rolled back. */
function reapplyQuery(values: Array<[string, string]>): string {
  const rows = values.map(([n, v]) => `(${literal(n)}, ${literal(v)})`).join(", ");
  return `SELECT pg_catalog.set_config(s.name, v.val, false) FROM pg_catalog.pg_settings s JOIN (VALUES ${rows}) AS v(name, val) ON pg_catalog.lower(s.name) = pg_catalog.lower(v.name) WHERE s.setting = s.reset_val`;
}

/** The state query's first columns, in order: a count above 0 pins the client for this reason. */
const PIN_REASONS = ["advisory lock", "temporary table", "temporary function or type", "cursor WITH HOLD", "LISTEN", "SQL PREPARE"] as const;
/** Pins whose state runs no SQL later: a transaction of a client pinned only so needs no settings read. */
const LIGHT_PINS: ReadonlySet<string> = new Set<string>(["advisory lock", "temporary table", "LISTEN", "SET ROLE / SESSION AUTHORIZATION"]);
const CURRENT_USER = PIN_REASONS.length;
const SESSION_USER = CURRENT_USER + 1;
const SETTINGS = SESSION_USER + 1;
const CUSTOM = SETTINGS + 1;

interface ClientSessionState {
  /** Custom (dotted) settings this client has SET: asked for by name, as pg_settings omits them. */
  customNames: Set<string>;
  /** Settings RESET in this transaction (lower case), or "all". */
  resets: Set<string>;
  /** What the texts of the client's prepared statements showed at Parse (made on the first that must be kept). */
  statements: StatementMarks | null;
  /**
   * Everything that made this transaction suspect was a text that cannot change a setting (LISTEN, DECLARE, CREATE
   * TEMP, an advisory lock): its check need not read pg_settings. Set only by inspect(); every other way of
   * suspecting a transaction goes through suspect(), which clears it.
   */
  settingsQuiet: boolean;
}

function stateOf(client: Client): ClientSessionState {
  let s = client.data[NAME] as ClientSessionState | undefined;
  if (!s) client.data[NAME] = s = { customNames: new Set(), resets: new Set(), statements: null, settingsQuiet: false };
  return s;
}

/** Marks the client's transaction suspect for something that may change settings too (see settingsQuiet). */
function suspect(client: Client): void {
  client.sessionSuspect = true;
  const st = client.data[NAME] as ClientSessionState | undefined;
  if (st !== undefined) st.settingsQuiet = false;
}

function marksOf(client: Client): StatementMarks {
  const st = stateOf(client);
  return (st.statements ??= new StatementMarks());
}

/**
 * Cheap screening of a Query/Parse text; only a text that may change session state is looked at further.
 * Returns that text (decoded) when it may change session state, else null.
 */
function inspect(client: Client, ctx: MessageContext, from: number, pooled: boolean): string | null {
  const b = ctx.buf;
  const end = ctx.end;
  // a long text seen before (an application's usual queries, a driver's unnamed statement) is one comparison
  const long = end - from >= MIN_REMEMBERED;
  if (long && knownClean(b, from, end)) return null;
  if (!mayChangeSessionState(b, from, end)) {
    if (long) rememberClean(b, from, end);
    return null;
  }
  const text = latin1(b, from, end);
  if (!AT_START.test(text) && !ANYWHERE.test(text)) {
    if (long) rememberClean(b, from, end);
    return null;
  }
  const st = stateOf(client);
  if (pooled) {
    const quiet = !TOUCHES_SETTINGS.test(text);
    st.settingsQuiet = (client.sessionSuspect ? st.settingsQuiet : true) && quiet;
    client.sessionSuspect = true;
  }
  for (const m of text.matchAll(CUSTOM_SET)) st.customNames.add((m[1] ?? m[2])!.toLowerCase());
  if (client.startupValues.size === 0) return text;
  for (const m of text.matchAll(RESET)) st.resets.add(m[1] === undefined ? "all" : m[1].toLowerCase());
  return text;
}

/** Reads the state row: the pin reason (or null) and the session-level settings. */
function readState(row: Array<string | null>, server: Server): { pin: string | null; settings: Array<[string, string]> } {
  let pin: string | null = null;
  for (let i = 0; i < PIN_REASONS.length; i++) if (Number(row[i]) > 0) pin ??= PIN_REASONS[i]!;
  const currentUser = row[CURRENT_USER];
  const sessionUser = row[SESSION_USER];
  if (pin === null && (currentUser !== sessionUser || sessionUser !== server.target.user)) pin = "SET ROLE / SESSION AUTHORIZATION";
  const settings = row[SETTINGS] ? (JSON.parse(row[SETTINGS]!) as Array<[string, string]>) : [];
  // a custom setting that was RESET reads as "": it is no longer the client's
  if (row[CUSTOM]) for (const [n, v] of JSON.parse(row[CUSTOM]!) as Array<[string, string | null]>) if (v) settings.push([n, v]);
  return { pin, settings };
}

function releaseIfDone(api: PluginApi, client: Client, server: Server): void {
  if (client.poolMode === "session" || client.server !== server || client.pinReason !== null) return;
  if (client.inSync && client.txStatus === TxStatus.Idle && server.internalPending === 0) api.releaseServer(client, server, "transaction");
}

/** RESET sends a setting back to the server's default; the client's default is what it connected with. */
function reapplyStartupValues(api: PluginApi, client: Client, server: Server, resets: Set<string>): void {
  const values: Array<[string, string]> = [];
  for (const [name, value] of client.startupValues) if (resets.has("all") || resets.has(name.toLowerCase())) values.push([name, value]);
  if (values.length === 0) return;
  server.runInternal(reapplyQuery(values), (error) => {
    if (error) return;
    for (const [name] of values) {
      const reported = server.params.get(name);
      if (reported === undefined || client.server !== server || client.param(name) === undefined) continue;
      if (client.param(name) !== reported) {
        client.setParam(name, reported);
        client.send(parameterStatus(name, reported));
      }
    }
    releaseIfDone(api, client, server);
  });
}

/** Settings the server does not report are carried by the client and replayed where it lands. */
function takeSettings(client: Client, server: Server, settings: Array<[string, string]>): void {
  for (const name of [...client.settings.keys()]) if (!settings.some(([n]) => n === name)) client.settings.delete(name);
  server.applied.clear();
  for (const [name, value] of settings) {
    if (client.param(name) !== undefined) continue; // reported parameters are tracked through ParameterStatus
    client.settings.set(name, value);
    server.applied.set(name, value);
  }
}

/** `withSettings`: also read the session-level settings (see stateQuery). */
function checkState(api: PluginApi, client: Client, server: Server, st: ClientSessionState | undefined, withSettings: boolean): void {
  const mode = api.config.settings.session_state;
  server.runInternal(stateQuery(st?.customNames ?? [], withSettings), (error, rows) => {
    if (error || rows.length !== 1) {
      server.closeNeeded = true; // state unknown: never hand this server to anyone else
      if (client.server === server) client.pinReason = "session state unknown";
      return;
    }
    const { pin, settings } = readState(rows[0]!, server);
    if (withSettings) takeSettings(client, server, settings);
    if (client.server !== server) return;
    if (pin !== null && mode === "error") {
      server.closeNeeded = true;
      client.fatal(SqlState.FeatureNotSupported, `${pin} is session state, which transaction pooling cannot keep (session_state = error)`);
      return;
    }
    if (pin !== client.pinReason) {
      api.log.info({ client: client.label, server: server.label, pin }, pin ? `client pinned to its server: ${pin}` : "client unpinned");
      client.pinReason = pin;
    }
    releaseIfDone(api, client, server);
  });
}

/**
 * Looks at Query and Parse texts only, with two regular expressions, for statements that can change session
 * state; what a Parse showed is remembered by statement name, and each later Bind of that statement counts the
 * same (drivers run a cached statement again without its text). After such a transaction (and after every
 * transaction of a pinned client) one internal query asks the server what state it holds: session settings are
 * taken along to the next server; advisory locks, temporary objects, holdable cursors, LISTEN, SQL PREPARE and
 * SET ROLE pin the client to its server until they are gone. A FunctionCall (fast-path) cannot be screened: it
 * is always checked. session_state = "verify" checks, besides, after every transaction not proven harmless
 * (harmless.ts), which catches what functions, DO blocks, triggers and views do out of the texts' sight;
 * "error" refuses such state instead of pinning; "ignore" does nothing (PgBouncer's behaviour).
 */
export default function sessionState(): PgbunPlugin {
  return {
    name: NAME,
    provides: ["session-state"],
    apply(api) {
      // read per message: kept from the settings, and read again on each reload (SIGHUP, the console's SET/RELOAD)
      let ignore = api.config.settings.session_state === "ignore";
      let verifying = api.config.settings.session_state === "verify";
      api.hooks.reload.tap(NAME, () => {
        ignore = api.config.settings.session_state === "ignore";
        verifying = api.config.settings.session_state === "verify";
      });
      const active = (c: Client) => !ignore && c.poolMode !== "session";
      const verify = () => verifying;
      const debug = () => api.log.isLevelEnabled("debug");
      api.onClientMessage(
        Frontend.Query,
        (ctx) => {
          const client = ctx.client;
          const on = active(client);
          const from = ctx.start + 5;
          const text = inspect(client, ctx, from, on);
          if (!on) return undefined;
          // a streamed text's rest is unseen (its prefix alone is screened): its transaction is checked
          if (ctx.partial) suspect(client);
          if (text !== null && DEALLOCATES_ALL.test(text)) stateOf(client).statements?.deallocatedAll();
          if (text === null && verify() && !provenHarmless(ctx.buf, from, cstringEnd(ctx.buf, from, ctx.end))) suspect(client);
          return undefined;
        },
        { stage: Stage.SessionScreen },
      );
      api.onClientMessage(
        Frontend.Parse,
        (ctx) => {
          const client = ctx.client;
          const on = active(client);
          const { buf, end } = ctx;
          const nameFrom = ctx.start + 5;
          const nameEnd = cstringEnd(buf, nameFrom, end);
          const textFrom = nameEnd + 1;
          // a streamed text's rest is unseen: the statement counts as changing, each Bind of it is checked
          const changing = inspect(client, ctx, textFrom, on) !== null || ctx.partial;
          if (!on) return undefined;
          let harmless = false;
          if (verify()) {
            harmless = !changing && provenHarmless(buf, textFrom, cstringEnd(buf, textFrom, end));
            // an unproven text marks its transaction even unbound: see StatementMarks on skipped Parses
            if (!harmless) suspect(client);
          }
          const unnamed = nameEnd === nameFrom;
          // (a named statement is never proven harmless: nothing is kept for one)
          if (changing || (harmless && unnamed)) marksOf(client).parsed(latin1(buf, nameFrom, nameEnd), changing, harmless);
          else if (unnamed) (client.data[NAME] as ClientSessionState | undefined)?.statements?.parsed("", false, false);
          return undefined;
        },
        { stage: Stage.SessionScreen },
      );
      api.onClientMessage(
        Frontend.Bind,
        (ctx) => {
          const client = ctx.client;
          if (!active(client)) return undefined;
          const marks = (client.data[NAME] as ClientSessionState | undefined)?.statements ?? null;
          const checkAll = verify();
          // an ordinary Bind of a client with no marked statement costs these few loads: nothing is read or made
          if (!checkAll && (marks === null || !marks.anyChanging)) return undefined;
          const { buf, end } = ctx;
          const nameFrom = cstringEnd(buf, ctx.start + 5, end) + 1; // after the portal name
          const nameEnd = cstringEnd(buf, nameFrom, end);
          if (checkAll) {
            // only the unnamed statement can be proven harmless (a Parse of a name in use fails, the old text stays)
            if (nameEnd !== nameFrom || marks === null || !marks.unnamedHarmless) suspect(client);
          } else if (marks!.bindMayChange(buf, nameFrom, nameEnd)) suspect(client);
          return undefined;
        },
        { stage: Stage.SessionScreen },
      );
      api.onClientMessage(
        Frontend.Close,
        (ctx) => {
          const marks = (ctx.client.data[NAME] as ClientSessionState | undefined)?.statements ?? null;
          if (marks === null || marks.changing === null || ctx.buf[ctx.start + 5] !== 0x53 /* 'S' */) return undefined;
          const nameFrom = ctx.start + 6;
          const nameEnd = cstringEnd(ctx.buf, nameFrom, ctx.end);
          if (nameEnd > nameFrom) marks.closed(latin1(ctx.buf, nameFrom, nameEnd));
          return undefined;
        },
        { stage: Stage.SessionScreen },
      );
      api.onClientMessage(
        Frontend.FunctionCall,
        (ctx) => {
          // a function called by OID has no text to screen (pg_advisory_lock, lo_*, anything): always checked
          if (active(ctx.client)) suspect(ctx.client);
          return undefined;
        },
        { stage: Stage.SessionScreen },
      );
      api.onServerMessage(
        Backend.ReadyForQuery,
        (ctx) => {
          const client = ctx.client;
          const server = ctx.server;
          // cheapest first: a field, then the sync count; client.data only for a transaction's end
          if (client.txStatus !== TxStatus.Idle || server === null || !client.inSync) return undefined;
          const st = client.data[NAME] as ClientSessionState | undefined;
          if (st !== undefined && st.resets.size > 0) {
            reapplyStartupValues(api, client, server, st.resets);
            st.resets = new Set();
          }
          if (active(client) && (client.sessionSuspect || client.pinReason !== null)) {
            if (debug()) api.log.debug({ client: client.label, server: server.label, pinned: client.pinReason }, "checking session state");
            // a pinned client's transaction that screened clean, or one suspect only for texts that cannot change a
            // setting, has changed no setting a text shows: the light check. Not in verify mode (it trusts no text:
            // CREATE TEMP TABLE ... AS SELECT f() may SET anything), and not while the pin is a statement or cursor
            // whose text was screened once and runs again without it (EXECUTE p, FETCH c)
            const light = !verify() && (!client.sessionSuspect || (st?.settingsQuiet ?? false)) && (client.pinReason === null || LIGHT_PINS.has(client.pinReason));
            const withSettings = !light;
            if (st !== undefined) st.settingsQuiet = false;
            client.sessionSuspect = false;
            st?.statements?.checkStarted();
            checkState(api, client, server, st, withSettings);
          }
          return undefined;
        },
        { stage: Stage.SessionCheck },
      );
    },
  };
}
