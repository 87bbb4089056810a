// What pgbun:auth gives pgbun's own logins to PostgreSQL (hook serverCredentials): a password, an md5 secret, or SCRAM keys a client proved.
import type { ServerCredentials } from "../../plugin-sdk/index.ts";
import type { Secret } from "./auth-file.ts";
import { provenClientKey } from "./scram.ts";

/**
 * A plaintext secret is the password; an md5 secret answers PostgreSQL's md5 challenge as it is; a SCRAM secret
 * answers SCRAM-SHA-256 with the ClientKey a client's proof gave (null until one has), as PgBouncer does. Neither
 * secret is a password: PostgreSQL asking for another method than the secret answers fails the login, clearly.
 */
export function serverCredentialsOf(secret: Secret | undefined): ServerCredentials | undefined {
  switch (secret?.kind) {
    case undefined:
      return undefined;
    case "plain":
      return { kind: "password", password: secret.password };
    case "md5":
      return { kind: "md5", secret: secret.hash };
    case "scram": {
      const clientKey = provenClientKey(secret.storedKey);
      return { kind: "scram", keys: clientKey === undefined ? null : { iterations: secret.iterations, salt: secret.salt, clientKey, serverKey: secret.serverKey } };
    }
  }
}

/**
 * The secrets auth_query last found, per user not in auth_file (PgBouncer keeps them on the user's credentials):
 * the server logins of that user's pool use them. Only a user PostgreSQL knows gets one; the oldest go first beyond
 * MAX_QUERIED.
 */
const queried = new Map<string, Secret>();
const MAX_QUERIED = 10_000;

/** Notes what auth_query found for `user` and hands it back (undefined: nothing found, and nothing kept). */
export function rememberQueried(user: string, secret: Secret | null | undefined): Secret | undefined {
  queried.delete(user);
  if (secret === null || secret === undefined) return undefined;
  if (queried.size >= MAX_QUERIED) queried.delete(queried.keys().next().value!);
  queried.set(user, secret);
  return secret;
}

/** What auth_query found for `user` at its last login, if it is not in auth_file. */
export function queriedSecret(user: string): Secret | undefined {
  return queried.get(user);
}
