// PostgreSQL 17's direct TLS (sslnegotiation=direct): a connection that opens with a TLS ClientHello, served by node:tls.
import { Duplex } from "node:stream";
import { createSecureContext, TLSSocket, type SecureContext } from "node:tls";
import type { Socket } from "bun";
import { SqlState } from "../../plugin-sdk/protocol/errors.ts";
import type { ClientTls } from "../../plugin-sdk/connections.ts";
import type { ClientConnection } from "../client.ts";
import { startupData } from "../client-startup.ts";
import type { ClientTlsConfig } from "./tls-options.ts";

/** A TLS record's content type for handshake messages: the first byte of a ClientHello. */
export const TLS_HANDSHAKE_RECORD = 0x16;
/**
 * What a client may send before its handshake ends: a ClientHello and a certificate chain fit with room to spare;
 * more is not a TLS client, and is not buffered.
 */
const MAX_HANDSHAKE_BYTES = 64 * 1024;
const ALPN = ["postgresql"];

/**
 * One secure context per loaded configuration: a reload makes a new ClientTlsConfig (and so a new context) with
 * the files read again, while sessions already open keep theirs, as on the SSLRequest path.
 */
const contexts = new WeakMap<ClientTlsConfig, SecureContext>();

function contextOf(config: ClientTlsConfig): SecureContext {
  let ctx = contexts.get(config);
  if (ctx === undefined) {
    const o = config.options;
    ctx = createSecureContext({
      cert: o.cert as Buffer,
      key: o.key as Buffer,
      ca: o.ca as Buffer | undefined,
      ciphers: o.ciphers,
      secureOptions: o.secureOptions,
    });
    contexts.set(config, ctx);
  }
  return ctx;
}

/**
 * Serves a client whose first bytes are a TLS record (`first`, everything read so far). The session is refused
 * without an answer, as PostgreSQL 17 does, when TLS is off or the client came on the Unix socket.
 */
export function startDirectTls(client: ClientConnection, first: Buffer): void {
  const config = client.core.clientTls;
  if (config === null || client.viaUnixSocket) {
    client.core.log.debug({ client: client.label }, "direct SSL connection rejected: TLS is not offered here");
    return client.close("direct SSL connection rejected");
  }
  let transport: DirectTlsTransport;
  try {
    transport = new DirectTlsTransport(client, config);
  } catch (err) {
    client.core.log.error({ client: client.label, err }, "cannot start TLS with the client");
    return client.close("TLS setup failed");
  }
  transport.ciphertext(first);
}

/**
 * The TLS session over the accepted Bun socket. Two faces:
 * - towards the listener: it takes the place of the ClientConnection as the raw socket's `data`. The listener's
 *   handlers (core/pgbun.ts) hand a socket's data whose `state` is not "login" to `onData`, its drain to
 *   `out.drain()`, its close and error to `close()`; here they carry ciphertext.
 * - towards the ClientConnection: it is the client's socket (swapSocket) with the members client.ts and Outbound
 *   use (write, end, pause, resume, the addresses); plaintext goes through the TLSSocket.
 */
class DirectTlsTransport {
  /** Not "login": the listener's data handler calls onData with the raw socket's reads. */
  readonly state = "direct-tls";
  /** The raw socket's drain handler calls out.drain(). */
  readonly out = { drain: (): void => this.rawDrain() };
  private readonly raw: Socket<unknown>;
  private readonly wire: Duplex;
  private readonly tls: TLSSocket;
  /** Ciphertext Bun's write did not take, and the TLSSocket's write callback waiting for it. */
  private pending: Buffer | null = null;
  private pendingDone: ((err?: Error | null) => void) | null = null;
  private endAfterPending = false;
  /** Ciphertext received before the handshake ended. */
  private handshakeBytes = 0;
  private secure = false;
  /** The TLSSocket's write buffer is over its mark: writes are refused (0) until its drain. */
  private full = false;
  private ended = false;

  constructor(
    private readonly client: ClientConnection,
    config: ClientTlsConfig,
  ) {
    this.raw = client.socket as Socket<unknown>;
    const self = this;
    this.wire = new Duplex({
      read() {}, // pushed from onData; the raw socket is paused instead when the client must wait
      write(chunk: Buffer, _enc, done) {
        self.rawWrite(chunk, done);
      },
      final(done) {
        if (self.pending !== null) self.endAfterPending = true;
        else self.raw.end();
        done();
      },
    });
    this.tls = new TLSSocket(this.wire as never, {
      isServer: true,
      secureContext: contextOf(config),
      // with a CA every client is asked for a certificate; only verify-* insist on one, judged after the handshake
      requestCert: config.options.requestCert === true,
      rejectUnauthorized: false,
      ALPNProtocols: ALPN,
    });
    // the streams' own failures end the client; an 'error' without a listener would throw
    this.wire.on("error", (err: Error) => this.client.close(`client TLS transport failed: ${err.message}`));
    this.tls.on("secure", () => this.handshakeDone(config));
    this.tls.on("data", (chunk: Buffer) => this.plaintext(chunk));
    this.tls.on("drain", () => {
      this.full = false;
      this.client.out.drain();
    });
    this.tls.on("error", (err: Error) => {
      if (this.client.closed) return;
      const phase = this.secure ? "client TLS session failed" : "client TLS handshake failed";
      this.client.core.log.debug({ client: this.client.label, err: err.message }, phase);
      this.client.close(`${phase}: ${err.message}`);
    });
    this.tls.on("close", () => this.client.close("client disconnected"));
    this.tls.on("end", () => this.client.close("client disconnected"));
    // from here on the raw socket's events come here, and the client writes through the TLS session
    this.raw.data = this;
    client.swapSocket(this as unknown as Socket<unknown>);
  }

  // ---- the listener's side: ciphertext from and to the raw socket ----

  /** A read of the raw socket. */
  onData(chunk: Uint8Array): void {
    this.ciphertext(Buffer.from(chunk));
  }

  ciphertext(chunk: Buffer): void {
    if (this.client.closed) return;
    if (!this.secure) {
      this.handshakeBytes += chunk.length;
      if (this.handshakeBytes > MAX_HANDSHAKE_BYTES) return this.client.close("TLS handshake too long");
    }
    this.wire.push(chunk);
  }

  /** The raw socket closed or failed. */
  close(reason: string): void {
    this.wire.push(null);
    this.client.close(reason);
  }

  get label(): string {
    return this.client.label;
  }

  private rawWrite(chunk: Buffer, done: (err?: Error | null) => void): void {
    const n = this.raw.write(chunk);
    if (n < 0) return this.rawGone(done);
    if (n === chunk.length) return done();
    this.pending = chunk.subarray(n);
    this.pendingDone = done;
  }

  private rawDrain(): void {
    const rest = this.pending;
    if (rest === null) return;
    const n = this.raw.write(rest);
    if (n >= 0 && n < rest.length) {
      this.pending = rest.subarray(n);
      return;
    }
    const done = this.pendingDone!;
    this.pending = null;
    this.pendingDone = null;
    if (n < 0) return this.rawGone(done);
    if (this.endAfterPending) this.raw.end();
    done();
  }

  /** The raw socket takes no more: the ciphertext is dropped (not an error the streams would throw) and the client closes. */
  private rawGone(done: () => void): void {
    this.client.close("client socket closed");
    done();
  }

  // ---- the client's side: plaintext ----

  private plaintext(chunk: Buffer): void {
    const client = this.client;
    if (client.closed) return;
    if (client.state === "login") startupData(client, chunk);
    else client.onData(chunk);
  }

  /**
   * The handshake ended: PostgreSQL 17 refuses a direct TLS session without ALPN `postgresql` (one offering
   * another protocol fails in the handshake itself), logging its reason and answering nothing. Then the same
   * verdict as the SSLRequest path: Client.tls, and verify-ca/verify-full insist on a verified certificate.
   */
  private handshakeDone(config: ClientTlsConfig): void {
    const client = this.client;
    if (client.closed) return;
    this.secure = true;
    const tls = this.tls;
    if (tls.alpnProtocol !== "postgresql") {
      client.core.log.info({ client: client.label, addr: client.addr }, "received direct SSL connection request without ALPN protocol negotiation extension");
      return client.close("direct SSL connection without ALPN");
    }
    const cert = tls.getPeerCertificate() as { subject?: { CN?: string | string[] } } | null | undefined;
    const hasCert = cert != null && Object.keys(cert).length > 0;
    const cn = cert?.subject?.CN;
    const info: ClientTls = {
      protocol: tls.getProtocol() ?? "",
      cipher: tls.getCipher()?.name ?? "",
      peerCommonName: cn === undefined ? null : Array.isArray(cn) ? (cn[0] ?? null) : cn,
      peerVerified: hasCert && tls.authorized === true,
    };
    client.tls = info;
    if (config.verifyPeer && !info.peerVerified) {
      client.fatal(SqlState.InvalidAuthorizationSpecification, "connection requires a valid client certificate");
    }
  }

  // ---- the Socket members client.ts and Outbound use ----

  /** Takes all of it, or nothing while the TLSSocket's buffer is over its mark (Outbound queues it until drain). */
  write(data: Uint8Array, offset = 0, length = data.length - offset): number {
    if (this.ended) return -1;
    if (this.full) return 0;
    // a copy: the caller's buffer (a server's read) is reused once this returns, and TLS may encrypt it later
    const copy = Buffer.from(data.subarray(offset, offset + length));
    if (!this.tls.write(copy)) this.full = true;
    return length;
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.secure) return void this.tls.end(); // what was written goes first, then close_notify, then the socket's end
    // before the handshake ends a TLS end would wait for it (client_login_timeout, a refusal): nothing is owed
    this.tls.destroy();
    this.raw.end();
  }

  pause(): void {
    this.raw.pause();
    this.tls.pause();
  }

  resume(): void {
    this.raw.resume();
    this.tls.resume();
  }

  get remoteAddress(): string {
    return this.raw.remoteAddress;
  }

  get remotePort(): number {
    return (this.raw as { remotePort?: number }).remotePort ?? 0;
  }

  get localAddress(): string {
    return (this.raw as { localAddress?: string }).localAddress ?? "";
  }

  get localPort(): number {
    return this.raw.localPort;
  }
}
