// TLS towards clients: the answer to an SSLRequest, the upgrade of the accepted socket, the handshake's verdict.
import type { Socket, SocketHandler } from "bun";
import { SqlState } from "../../plugin-sdk/protocol/errors.ts";
import type { ClientTls } from "../../plugin-sdk/connections.ts";
import type { ClientConnection } from "../client.ts";
import type { ClientTlsConfig } from "./tls-options.ts";

const SSL_ACCEPTED = Buffer.from("S");

/**
 * The handler set of upgraded client sockets: the plaintext one's (reads, drain, close, error) with its own
 * `open` (the client exists already) and the handshake's verdict.
 */
export function tlsClientHandlers(plain: SocketHandler<ClientConnection | undefined>): SocketHandler<ClientConnection | undefined> {
  return {
    ...plain,
    open() {},
    handshake(socket, success, err) {
      const client = socket.data;
      if (client) handshakeDone(client, socket, success, err);
    },
  };
}

/**
 * Answers an SSLRequest with `S` and turns the client's socket into the server side of a TLS session; the
 * client's StartupMessage then arrives on the TLS socket. The raw socket's own events carry ciphertext from here
 * on: their `data` is cleared so the plaintext handlers ignore them.
 */
export function startClientTls(client: ClientConnection, config: ClientTlsConfig, handlers: SocketHandler<ClientConnection | undefined>): void {
  const raw = client.socket as Socket<ClientConnection | undefined>;
  // a fresh socket takes one byte at once; anything else would leave the client waiting for an answer
  if (raw.write(SSL_ACCEPTED) !== 1) return client.close("could not answer the SSLRequest");
  let upgraded: [Socket<ClientConnection | undefined>, Socket<ClientConnection | undefined>];
  try {
    upgraded = raw.upgradeTLS<ClientConnection | undefined>({ data: client, tls: config.options, socket: handlers });
  } catch (err) {
    client.core.log.error({ client: client.label, err }, "cannot start TLS with the client");
    return client.close("TLS setup failed");
  }
  // Bun hands back a new object for the raw side, and its events, not the old one's, keep coming
  raw.data = undefined;
  upgraded[0].data = undefined;
  client.swapSocket(upgraded[1]);
}

/** The handshake ended: a failed one closes the client; verify-ca/verify-full refuse one without a verified certificate. */
function handshakeDone(client: ClientConnection, socket: Socket<ClientConnection | undefined>, success: boolean, err: Error | null): void {
  if (client.closed) return;
  const core = client.core;
  if (!success) {
    core.log.debug({ client: client.label, err: err?.message }, "client TLS handshake failed");
    return client.close(`TLS handshake failed: ${err?.message ?? "unknown error"}`);
  }
  const cert = socket.getPeerCertificate() as { subject?: { CN?: string | string[] } } | null | undefined;
  const hasCert = cert != null && Object.keys(cert).length > 0;
  const cn = cert?.subject?.CN;
  const peerCommonName = cn === undefined ? null : Array.isArray(cn) ? (cn[0] ?? null) : cn;
  const tls: ClientTls = {
    protocol: socket.getTLSVersion() ?? "",
    cipher: socket.getCipher()?.name ?? "",
    peerCommonName,
    // with requestCert, authorized means a certificate came and verified against client_tls_ca_file
    peerVerified: hasCert && socket.authorized === true,
  };
  client.tls = tls;
  const config = core.clientTls;
  if (config?.verifyPeer && !tls.peerVerified) {
    client.fatal(SqlState.InvalidAuthorizationSpecification, "connection requires a valid client certificate");
  }
}
