// Built-in plugin "pgbun:auth": client authentication by auth_type (trust, any, plain, md5, scram-sha-256, cert, hba) against auth_file and auth_query.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { SqlState, type Client, type PgbunConfig, type PgbunPlugin, type PluginApi, type Refusal } from "../../plugin-sdk/index.ts";
import { parseAuthFile, type Secret } from "./auth-file.ts";
import { AuthQueryError, LookupSlots, lookupSecret } from "./auth-query.ts";
import { certDecision } from "./cert.ts";
import { HbaError, matchHba, parseHba, type HbaRule } from "./hba.ts";
import { LoginThrottle } from "./login-throttle.ts";
import { cleartextExchange, keysOf, md5Exchange, passwordFailed, scramExchange } from "./methods.ts";
import { queriedSecret, rememberQueried, serverCredentialsOf } from "./server-credentials.ts";

const PLUGIN_NAME = "pgbun:auth";

/** The users of the config's auth_file (relative to the config's directory), or null when none is set. */
function loadUsers(config: PgbunConfig): Map<string, Secret> | null {
  const file = config.settings.auth_file;
  if (file === "") return null;
  return parseAuthFile(readFileSync(resolve(config.dir, file), "utf8"));
}

/** The rules of auth_hba_file when auth_type is hba (else null); throws an HbaError naming the file and line. */
function loadHba(config: PgbunConfig): HbaRule[] | null {
  const s = config.settings;
  if (s.auth_type !== "hba") return null;
  if (s.auth_hba_file === "") throw new Error("auth_type hba needs auth_hba_file");
  const path = resolve(config.dir, s.auth_hba_file);
  return parseHba(readFileSync(path, "utf8"), path, (p) => readFileSync(p, "utf8"));
}

/** What authenticate works with: the files as last loaded. */
interface AuthState {
  users: Map<string, Secret> | null;
  hba: HbaRule[] | null;
  /** auth_query lookups running at once (bounded). */
  readonly lookups: LookupSlots;
}

/**
 * Taps `authenticate` for every client, the admin console's included (admin_users and stats_users log in the same
 * way). With PgBouncer's meanings: `any` lets anyone in; `trust` asks no password but, when an auth_file or
 * auth_user is set, only known users get in; `plain`, `md5` and `scram-sha-256` ask for a password and check it
 * against the user's secret (md5 with a SCRAM secret runs SCRAM, as PgBouncer does); `cert` wants a verified client
 * certificate whose CN is the user; `hba` takes the method from the first auth_hba_file line that matches. A user
 * not in auth_file is looked up with auth_query when auth_user is set. Unknown users and wrong passwords get the
 * same 28P01 (an unknown user's SCRAM exchange runs to its end against mock keys); HBA refusals are 28000, as
 * PostgreSQL's. Failed logins are logged without secrets, and an address's repeated password failures are answered
 * slowly (auth_failure_delay). The files are read again on reload (a broken one keeps the old users or rules). A
 * [databases] entry without a password logs in to PostgreSQL with the login user's auth_file secret
 * (serverCredentials: the password, an md5 secret, or a SCRAM secret with the keys a client's SCRAM login proved), as PgBouncer does. Another plugin may tap `authenticate` before this one and bail to decide first.
 */
export default function authPlugin(): PgbunPlugin {
  return {
    name: PLUGIN_NAME,
    provides: ["auth"],
    apply(api) {
      // an unreadable auth_file or a broken auth_hba_file at start stops pgbun (thrown from apply)
      const state: AuthState = { users: loadUsers(api.config), hba: loadHba(api.config), lookups: new LookupSlots() };
      const s = api.config.settings;
      if (state.users === null && s.auth_user === "" && !["trust", "any", "cert"].includes(s.auth_type)) {
        api.log.warn({ auth_type: s.auth_type }, "no auth_file or auth_user is set: every password login will fail");
      }
      if (s.auth_type === "cert" && (s.client_tls_sslmode === "disable" || s.client_tls_ca_file === "")) {
        api.log.warn({ client_tls_sslmode: s.client_tls_sslmode }, "auth_type cert needs client TLS with client_tls_ca_file: every login will fail");
      }
      const throttle = new LoginThrottle();
      api.hooks.reload.tap(PLUGIN_NAME, (config) => {
        try {
          state.users = loadUsers(config);
        } catch (err) {
          api.log.error({ file: config.settings.auth_file, err: (err as Error).message }, "auth_file could not be read; the previous users stay");
        }
        try {
          state.hba = loadHba(config);
        } catch (err) {
          const where = err instanceof HbaError ? { file: err.file, line: err.line, reason: err.reason } : { file: config.settings.auth_hba_file, reason: (err as Error).message };
          api.log.error(where, "auth_hba_file could not be loaded; the previous rules stay");
        }
      });
      api.hooks.tick.tap(PLUGIN_NAME, (now) => throttle.sweep(now));
      // the same credentials log in to PostgreSQL: a password, an md5 secret, a SCRAM secret with a client's keys
      api.hooks.serverCredentials.tap(PLUGIN_NAME, (user) => serverCredentialsOf(state.users?.get(user) ?? queriedSecret(user)));
      api.hooks.authenticate.tapPromise(PLUGIN_NAME, (client) => {
        // most logins ask nothing (trust without user lists, any): one shared settled promise, no exchange made
        if (admitsAtOnce(api.config.settings, state)) return ADMITTED;
        return authenticateLogged(client);
      });
      const authenticateLogged = async (client: Client): Promise<Refusal | undefined> => {
        const refusal = await authenticate(api, client, state);
        if (refusal !== undefined && !client.closed) {
          // never the password or the secret: who, from where, and how it was refused
          api.log.warn(
            { client: client.label, user: client.user, database: client.database, addr: client.addr, auth_type: api.config.settings.auth_type, code: refusal.code, reason: refusal.message },
            "client authentication failed",
          );
          // a password guess (unknown user or wrong password alike) from an address that keeps failing waits
          if (refusal.code === SqlState.InvalidPassword) {
            const wait = throttle.failed(client.addr, Date.now(), api.config.settings.auth_failure_delay * 1000);
            if (wait > 0) await new Promise((done) => setTimeout(done, wait));
          }
        }
        return refusal;
      };
    },
  };
}

/** What authenticate resolves with when it lets the client in without asking: made once, shared by every login. */
const ADMITTED: Promise<Refusal | undefined> = Promise.resolve(undefined);

/**
 * True when authenticate would let any client in without an exchange or a lookup: auth_type any, or trust with no
 * auth_file users and no auth_user to know users from (as authenticate's "any" and "trust" cases decide).
 */
function admitsAtOnce(s: PgbunConfig["settings"], state: AuthState): boolean {
  if (s.auth_type === "any") return true;
  return s.auth_type === "trust" && state.users === null && s.auth_user === "";
}

/** PostgreSQL's name for where a client came from, and its encryption, in HBA refusals. */
function hbaWho(client: Client): string {
  const host = client.addr === "unix" ? "[local]" : client.addr;
  return `host "${host}", user "${client.user}", database "${client.database}", ${client.tls !== null ? "SSL encryption" : "no encryption"}`;
}

type Method = "trust" | "any" | "plain" | "md5" | "scram-sha-256" | "cert" | "reject";

/** The method for this client: auth_type's, or the matching HBA line's; a refusal when no line matches. */
function methodFor(client: Client, authType: string, hba: HbaRule[] | null): Method | Refusal {
  if (authType !== "hba") return authType as Method;
  const rule = matchHba(hba ?? [], { unix: client.addr === "unix", tls: client.tls !== null, addr: client.addr, database: client.database, user: client.user });
  if (rule === null) return { code: SqlState.InvalidAuthorizationSpecification, message: `no pg_hba.conf entry for ${hbaWho(client)}` };
  return rule.method === "password" ? "plain" : rule.method;
}

/** The user's secret: auth_file's, else auth_query's when auth_user is set; undefined for an unknown user. */
async function secretOf(api: PluginApi, client: Client, state: AuthState): Promise<Secret | undefined> {
  const known = state.users?.get(client.user);
  const s = api.config.settings;
  if (known !== undefined || s.auth_user === "") return known;
  return rememberQueried(client.user, await lookupSecret(api, state.lookups, client, state.users?.get(s.auth_user)));
}

async function authenticate(api: PluginApi, client: Client, state: AuthState): Promise<Refusal | undefined> {
  const s = api.config.settings;
  const method = methodFor(client, s.auth_type, state.hba);
  if (typeof method !== "string") return method;
  try {
    switch (method) {
      case "any":
        return undefined;
      case "reject":
        return { code: SqlState.InvalidAuthorizationSpecification, message: `pg_hba.conf rejects connection for ${hbaWho(client)}` };
      case "cert":
        return certDecision(client.tls, client.user);
      case "trust": {
        // PgBouncer: no password, but the user must be known when there is somewhere to know it from
        if (state.users === null && s.auth_user === "") return undefined;
        return (await secretOf(api, client, state)) === undefined ? passwordFailed(client.user) : undefined;
      }
      case "plain":
        return await cleartextExchange(client, await secretOf(api, client, state));
      case "md5": {
        const secret = await secretOf(api, client, state);
        if (secret?.kind === "scram") return await scramExchange(client, secret, s.scram_iterations);
        return await md5Exchange(client, secret);
      }
      case "scram-sha-256":
        return await scramExchange(client, keysOf(await secretOf(api, client, state), s.scram_iterations), s.scram_iterations);
      default:
        return { code: SqlState.InvalidAuthorizationSpecification, message: `auth_type ${method as string} is not supported` };
    }
  } catch (err) {
    // a password packet without its terminator, or a SASL message shorter than it says
    if (err instanceof RangeError) return { code: SqlState.ProtocolViolation, message: "invalid password packet" };
    if (err instanceof AuthQueryError) {
      api.log.error({ client: client.label, err: err.message }, "auth_query lookup failed");
      return { code: SqlState.ConnectionFailure, message: "authentication lookup failed: pgbun could not run auth_query" };
    }
    throw err;
  }
}
