// auth_query: the secret of a user not in auth_file, looked up on a server connection of auth_user's own to auth_dbname.
import { internalQuery, loginFailureOf, type Client, type PluginApi } from "../../plugin-sdk/index.ts";
import { parseSecret, type Secret } from "./auth-file.ts";

/** The lookup gives up after this long (a server that accepted the connection and then went silent). */
const LOOKUP_TIMEOUT_MS = 15_000;

/**
 * Lookups running at once are at most default_pool_size per worker (the size of the auth pool PgBouncer would
 * keep): a storm of logins by unknown names must not take PostgreSQL's max_connections from the pools. The rest
 * wait their turn in order.
 */
export class LookupSlots {
  private running = 0;
  private readonly queue: Array<() => void> = [];

  async acquire(limit: number): Promise<void> {
    if (this.running < limit) {
      this.running++;
      return;
    }
    await new Promise<void>((resume) => this.queue.push(resume));
  }

  release(): void {
    const next = this.queue.shift();
    if (next !== undefined) next(); // the slot passes to the next waiter
    else this.running--;
  }
}
/** Why a lookup could not be made (the server is down, auth_user cannot log in, the query fails): not the user's fault. */
export class AuthQueryError extends Error {}

/**
 * `text` as a string literal PostgreSQL reads the same whatever standard_conforming_strings says: an E'' literal
 * with backslashes and quotes doubled. (The internal query runs in the simple protocol, which has no parameters.)
 */
export function quoteLiteral(text: string): string {
  return `E'${text.replace(/\\/g, "\\\\").replace(/'/g, "''")}'`;
}

/** The auth_query with its $1 (not $10...) replaced by the user name as a literal. */
export function authQueryFor(query: string, user: string): string {
  return query.replace(/\$1(?!\d)/g, () => quoteLiteral(user));
}

/**
 * Looks `client.user`'s secret up with auth_query, as PgBouncer does: a connection of its own, logged in as
 * auth_user with auth_user's credentials (the [databases] entry's password when the entry logs in as auth_user,
 * else auth_user's plaintext secret in auth_file), to the entry auth_dbname names or else the client's. Nothing of
 * the client's startup packet reaches it (CVE-2025-12819: a client's search_path must not pick which pg_authid the
 * query reads), and it is closed after the one query. Null when the query returns no row or a NULL secret (an
 * unknown user, a role that cannot log in, a password past VALID UNTIL with the default query): the caller answers
 * that exactly as a wrong password, and never lets the client in as auth_user (CVE-2015-6817). No cache: each
 * login asks again, so a changed or expired password counts at once.
 */
export async function lookupSecret(api: PluginApi, slots: LookupSlots, client: Client, authUserSecret: Secret | undefined): Promise<Secret | null> {
  await slots.acquire(Math.max(1, api.config.settings.default_pool_size));
  try {
    // a client that left while waiting for its turn needs no answer
    return client.closed ? null : await lookup(api, client, authUserSecret);
  } finally {
    slots.release();
  }
}

async function lookup(api: PluginApi, client: Client, authUserSecret: Secret | undefined): Promise<Secret | null> {
  const s = api.config.settings;
  const dbName = s.auth_dbname !== "" ? s.auth_dbname : client.database;
  const entry = s.auth_dbname !== "" ? (api.config.databases[dbName] ?? null) : api.resolveDatabase(dbName);
  if (entry === null) {
    if (s.auth_dbname !== "") throw new AuthQueryError(`auth_dbname "${s.auth_dbname}" is no [databases] entry`);
    return null; // no such database: the login fails as any unknown user's
  }
  const password = entry.user === s.auth_user && entry.password !== undefined ? entry.password : authUserSecret?.kind === "plain" ? authUserSecret.password : undefined;
  const target = { ...api.targetFor(entry, dbName, s.auth_user), user: s.auth_user, password, startupParams: {} };
  let server;
  try {
    server = await api.openServer(target, null);
  } catch (err) {
    throw new AuthQueryError(`auth_user "${s.auth_user}" could not log in to ${target.host}:${target.port}/${target.database}: ${loginFailureOf(err).message}`);
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const rows = await Promise.race([
      internalQuery(server, authQueryFor(s.auth_query, client.user)),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new AuthQueryError(`auth_query got no answer in ${LOOKUP_TIMEOUT_MS / 1000} s`)), LOOKUP_TIMEOUT_MS);
      }),
    ]).catch((err: unknown) => {
      if (err instanceof AuthQueryError) throw err;
      throw new AuthQueryError(`auth_query failed: ${(err as Error).message}`);
    });
    if (rows.length > 1) throw new AuthQueryError(`auth_query returned ${rows.length} rows for one user`);
    const secret = rows[0]?.[1];
    return secret === undefined || secret === null || secret === "" ? null : parseSecret(secret);
  } finally {
    clearTimeout(timer);
    server.close("auth_query done");
  }
}
