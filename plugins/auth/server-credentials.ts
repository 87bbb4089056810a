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
