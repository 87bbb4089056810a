// TLS towards servers: SSLRequest before the StartupMessage, the upgrade on `S`, server_tls_sslmode's verdict.
import type { Socket, SocketHandler } from "bun";
import type { ServerConnection } from "../server.ts";
import type { ServerTlsConfig } from "./tls-options.ts";

/** SSLRequest: length 8, code 80877103. */
const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);
const S = 0x53;
const N = 0x4e;

/** The handler set of a server socket once it carries the protocol (plaintext, or the TLS socket after the upgrade). */
export const SERVER_SOCKET: SocketHandler<ServerConnection> = {
  open(socket) {
    socket.data.onOpen(socket);
  },
  data(socket, chunk) {
    socket.data.onData(chunk);
  },
  drain(socket) {
    socket.data.out.drain();
  },
  close(socket) {
    socket.data.onClose("server closed the connection");
  },
  error(socket, err) {
    socket.data.core.log.debug({ server: socket.data.label, err }, "server socket error");
    socket.data.onClose(`socket error: ${err.message}`);
  },
  connectError(socket, err) {
    socket.data.onClose(`connect failed: ${err.message}`);
  },
};

/** The upgraded socket: the login starts once the handshake's verdict allows it. */
const TLS_SERVER_SOCKET: SocketHandler<ServerConnection> = {
  ...SERVER_SOCKET,
  open() {},
  handshake(socket, success, err) {
    const server = socket.data;
    const verdict = judge(server.core.serverTls.mode, socket, success, err);
    if (verdict === null) return server.onOpen(socket);
    server.onClose(verdict);
    socket.end(); // the server never had this socket: its close would not end it
  },
  close(socket) {
    // a socket refused at the handshake was never the server's
    if (socket.data.socket === socket) SERVER_SOCKET.close!(socket);
  },
};

/** Why the handshake does not satisfy `mode`, or null when the login may go on. */
function judge(mode: ServerTlsConfig["mode"], socket: Socket<ServerConnection>, success: boolean, err: Error | null): string | null {
  const code = (err as { code?: string } | null)?.code ?? "";
  const why = err?.message ?? "unknown error";
  // with rejectUnauthorized off, Bun reports an unverified chain as a handshake that succeeded unauthorized, and a
  // host name mismatch (alone or with a bad chain) as one that failed, though the session is up: a session is up
  // when the server's certificate came
  const cert = socket.getPeerCertificate() as object | null | undefined;
  const up = success || (cert != null && Object.keys(cert).length > 0);
  if (!up) return `TLS handshake with the server failed: ${why}`;
  const altnameOnly = !success && code === "ERR_TLS_CERT_ALTNAME_INVALID";
  if (mode === "verify-full" && !(success && socket.authorized)) return `server certificate verification failed (server_tls_sslmode verify-full): ${why}`;
  // the chain is what verify-ca checks; a host name mismatch alone is not its concern
  if (mode === "verify-ca" && !socket.authorized && !altnameOnly) return `server certificate verification failed (server_tls_sslmode verify-ca): ${why}`;
  return null;
}

/** Ends a negotiation that cannot lead to a login: the server never had this socket, so its close would not end it. */
function refuse(socket: Socket<ServerConnection>, reason: string): void {
  socket.data.onClose(reason);
  socket.end();
}

/**
 * Connects and sends SSLRequest; on `S` upgrades to TLS (verified as server_tls_sslmode says), on `N` goes on in
 * plaintext for allow and prefer only. The login (ServerConnection.onOpen) starts on the socket that won.
 */
export function connectServerTls(server: ServerConnection, host: string, port: number, config: ServerTlsConfig): Promise<unknown> {
  /** 0: waiting for the answer; 1: plaintext; 2: upgraded (the raw socket's own events are ciphertext). */
  let phase = 0;
  return Bun.connect<ServerConnection>({
    hostname: host,
    port,
    data: server,
    socket: {
      ...SERVER_SOCKET,
      open(socket) {
        if (socket.write(SSL_REQUEST) !== SSL_REQUEST.length) refuse(socket, "could not send SSLRequest");
      },
      data(socket, chunk) {
        if (phase === 1) return socket.data.onData(chunk);
        if (phase === 2) return;
        const answer = chunk[0];
        if (answer === S) {
          // bytes after the answer and before the handshake were not sent under TLS: they may be an attacker's
          // (CVE-2021-23222), so they end the connection
          if (chunk.length > 1) return refuse(socket, "server sent unencrypted data after its SSL response");
          return upgrade(socket, host, config);
        }
        if (answer === N && chunk.length === 1) {
          if (config.mode !== "allow" && config.mode !== "prefer") return refuse(socket, `server does not support TLS (server_tls_sslmode ${config.mode})`);
          phase = 1;
          return socket.data.onOpen(socket);
        }
        // an ErrorResponse from a server that predates SSLRequest, or anything else: no login follows it
        refuse(socket, `unexpected answer to SSLRequest (byte ${answer})`);
      },
      drain(socket) {
        if (phase === 1) socket.data.out.drain();
      },
      close(socket) {
        if (phase !== 2) socket.data.onClose("server closed the connection");
      },
      error(socket, err) {
        if (phase !== 2) SERVER_SOCKET.error!(socket, err);
      },
    },
  });

  function upgrade(socket: Socket<ServerConnection>, hostname: string, cfg: ServerTlsConfig): void {
    phase = 2;
    try {
      socket.upgradeTLS<ServerConnection>({ data: socket.data, tls: { ...cfg.options, serverName: hostname }, socket: TLS_SERVER_SOCKET });
    } catch (err) {
      refuse(socket, `TLS setup failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}
