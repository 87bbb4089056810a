// Built-in plugin "pgbun:auth": client authentication by auth_type (trust, any, plain, md5, scram-sha-256) against auth_file.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { SqlState, type Client, type PgbunConfig, type PgbunPlugin, type PluginApi, type Refusal } from "../../plugin-sdk/index.ts";
import { parseAuthFile, type Secret } from "./auth-file.ts";
import { cleartextExchange, keysOf, md5Exchange, passwordFailed, scramExchange } from "./methods.ts";

const PLUGIN_NAME = "pgbun:auth";

/** The users of the config's auth_file (relative to the config's directory), or null when none is set. */
function loadUsers(config: PgbunConfig): Map<string, Secret> | null {
  const file = config.settings.auth_file;
  if (file === "") return null;
  return parseAuthFile(readFileSync(resolve(config.dir, file), "utf8"));
}

/**
 * Taps `authenticate` for every client, the admin console's included (admin_users and stats_users log in the same
 * way). With PgBouncer's meanings: `any` lets anyone in; `trust` asks no password but, when an auth_file is set,
 * only its users get in; `plain`, `md5` and `scram-sha-256` ask for a password and check it against the user's
 * secret (md5 with a SCRAM secret runs SCRAM, as PgBouncer does). Unknown users and wrong passwords get the same
 * 28P01; an unknown user's SCRAM exchange runs to its end against mock keys. The file is read again on reload (a
 * broken one keeps the old list). A [databases] entry without a password logs in to PostgreSQL with the login
 * user's plaintext secret (serverPassword), as PgBouncer does. Another plugin may tap `authenticate` before this one and bail to decide first.
 */
export default function authPlugin(): PgbunPlugin {
  return {
    name: PLUGIN_NAME,
    provides: ["auth"],
    apply(api) {
      let users = loadUsers(api.config); // an unreadable auth_file at start stops pgbun (thrown from apply)
      if (users === null && !["trust", "any"].includes(api.config.settings.auth_type)) {
        api.log.warn({ auth_type: api.config.settings.auth_type }, "no auth_file is set: every password login will fail");
      }
      api.hooks.reload.tap(PLUGIN_NAME, (config) => {
        try {
          users = loadUsers(config);
        } catch (err) {
          api.log.error({ file: config.settings.auth_file, err: (err as Error).message }, "auth_file could not be read; the previous users stay");
        }
      });
      // the same credentials log in to PostgreSQL; an md5 or SCRAM secret is no password pgbun could send
      api.hooks.serverPassword.tap(PLUGIN_NAME, (user) => {
        const secret = users?.get(user);
        return secret?.kind === "plain" ? secret.password : undefined;
      });
      api.hooks.authenticate.tapPromise(PLUGIN_NAME, async (client) => {
        const refusal = await authenticate(api, client, users);
        if (refusal !== undefined && !client.closed) {
          // never the password or the secret: who, from where, and how it was refused
          api.log.warn({ client: client.label, user: client.user, addr: client.addr, auth_type: api.config.settings.auth_type, code: refusal.code }, "client authentication failed");
        }
        return refusal;
      });
    },
  };
}

async function authenticate(api: PluginApi, client: Client, users: Map<string, Secret> | null): Promise<Refusal | undefined> {
  const s = api.config.settings;
  const secret = users?.get(client.user);
  try {
    switch (s.auth_type) {
      case "any":
        return undefined;
      case "trust":
        return users !== null && secret === undefined ? passwordFailed(client.user) : undefined;
      case "plain":
        return await cleartextExchange(client, secret);
      case "md5":
        if (secret?.kind === "scram") return await scramExchange(client, secret, s.scram_iterations);
        return await md5Exchange(client, secret);
      case "scram-sha-256":
        return await scramExchange(client, keysOf(secret, s.scram_iterations), s.scram_iterations);
      default:
        return { code: SqlState.InvalidAuthorizationSpecification, message: `auth_type ${s.auth_type} is not supported` };
    }
  } catch (err) {
    // a password packet without its terminator, or a SASL message shorter than it says
    if (err instanceof RangeError) return { code: SqlState.ProtocolViolation, message: "invalid password packet" };
    throw err;
  }
}
