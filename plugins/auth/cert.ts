// Certificate authentication (auth_type cert, HBA method cert): a verified client certificate whose CN is the user name.
import { SqlState, type ClientTls, type Refusal } from "../../plugin-sdk/index.ts";

/**
 * The decision on a client's TLS session, as PgBouncer and PostgreSQL take it: the client came over TLS with a
 * certificate verified against client_tls_ca_file, and its subject CN equals the user name exactly. Both refusals
 * are PostgreSQL's (28000, not 28P01: no password was tried).
 */
export function certDecision(tls: ClientTls | null, user: string): Refusal | undefined {
  if (tls === null || !tls.peerVerified || tls.peerCommonName === null) {
    return { code: SqlState.InvalidAuthorizationSpecification, message: "connection requires a valid client certificate" };
  }
  if (tls.peerCommonName !== user) {
    return {
      code: SqlState.InvalidAuthorizationSpecification,
      message: `certificate authentication failed for user "${user}"`,
      detail: `The certificate's common name does not match the user name.`,
    };
  }
  return undefined;
}
