// Logs a server connection in to PostgreSQL: StartupMessage, trust/cleartext/md5/SCRAM-SHA-256, connect_query, within server_connect_timeout.
import { AuthCode, Backend, Frontend, TxStatus } from "../plugin-sdk/protocol/codes.ts";
import { decodeError, errorResponse, SqlState } from "../plugin-sdk/protocol/errors.ts";
import { decodeParameterStatus } from "../plugin-sdk/protocol/decode.ts";
import { MessageWriter, query, startupMessage } from "../plugin-sdk/protocol/writer.ts";
import { md5SaltedResponse } from "../plugin-sdk/auth-crypto.ts";
import type { ServerCredentials } from "../plugin-sdk/hooks.ts";
import type { DatabaseEntry } from "../plugin-sdk/config.ts";
import { md5PasswordResponse, ScramClient, ScramKeysMismatch } from "./auth/scram-client.ts";
import type { ServerConnection } from "./server.ts";

import type { LoginFailure } from "../plugin-sdk/connections.ts";

export type { LoginFailure };

export class LoginError extends Error {
  constructor(readonly failure: LoginFailure) {
    super(failure.message);
    this.name = "LoginError";
  }
}

const decoder = new TextDecoder();

/** libpq refuses login-phase messages (other than ErrorResponse and NoticeResponse) over 30000 bytes; pgbun all. */
const MAX_LOGIN_MESSAGE = 30_000;

/** The entry keys PgBouncer sends as startup parameters of each server login, under these names. */
const STARTUP_KEYS = ["client_encoding", "datestyle", "timezone", "application_name"] as const;

/** An entry's startup parameters for its server logins (PgBouncer's db->startup_params), or undefined for none. */
export function entryStartupParams(entry: DatabaseEntry): Record<string, string> | undefined {
  let params: Record<string, string> | undefined;
  for (const key of STARTUP_KEYS) {
    const value = entry[key];
    if (value !== undefined) (params ??= {})[key] = value;
  }
  return params;
}

/** A server's text for a log line or an error: printable ASCII, bounded. */
function printable(text: string): string {
  return text.slice(0, 200).replace(/[^\x20-\x7e]/g, "?");
}

/**
 * pgbun holds nothing PostgreSQL accepts for this user: a configuration matter that will not pass by itself, so 28000
 * (pgbun:backoff calls it permanent: waiting clients get it at once, as PgBouncer's kill_pool_logins does).
 */
class CredentialsError extends Error {}

/**
 * PostgreSQL asks for a password the credentials cannot answer: PgBouncer's "wrong password type", with what was
 * asked and what pgbun holds (never the secret).
 */
function wrongCredentials(user: string, asked: string, c: ServerCredentials | undefined): Error {
  if (c === undefined) return new CredentialsError(`server asks for a password for user "${user}" and none is configured`);
  const held =
    c.kind === "md5" ? "only an md5 secret" : c.kind === "scram" ? (c.keys === null ? "a SCRAM secret, and no client has logged in with SCRAM against it yet" : "only a SCRAM secret") : "a password";
  return new CredentialsError(`wrong password type: the server asks for ${asked} for user "${user}", and pgbun holds ${held}`);
}

export class ServerLogin {
  private resolve!: () => void;
  private reject!: (e: LoginError) => void;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private scram: ScramClient | null = null;
  private scramContinued = false;
  private scramVerified = false;
  private authenticated = false;
  private finished = false;
  /** The target's connect_query is running (PgBouncer's exec_on_connect): the first error it reported, if any. */
  private connectQuery: { error: LoginFailure | null } | null = null;

  constructor(private readonly server: ServerConnection) {}

  start(): Promise<void> {
    const server = this.server;
    const { host, port } = server.target;
    const promise = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    const timeout = server.core.config.settings.server_connect_timeout;
    if (timeout > 0) {
      this.timer = setTimeout(() => this.failed({ message: `server_connect_timeout (${timeout}s) reached connecting to ${host}:${port}` }), timeout * 1000);
    }
    server.core.connectSocket(server, host, port).catch((err: unknown) => {
      this.failed({ message: `could not connect to ${host}:${port}: ${err instanceof Error ? err.message : String(err)}` });
    });
    return promise;
  }

  opened(): void {
    const t = this.server.target;
    // libpq's bound for login messages: no PostgreSQL sends more, and a hostile server must not make us buffer more
    const framer = this.server.framer;
    framer.maxLength = Math.min(framer.maxLength, MAX_LOGIN_MESSAGE);
    const params: Record<string, string> = { user: t.user, database: t.database, ...t.startupParams };
    this.server.out.send(startupMessage(params));
  }

  message(type: number, buf: Uint8Array, start: number, end: number): boolean {
    try {
      if (this.connectQuery !== null) return this.connectQueryMessage(type, buf, start, end);
      switch (type) {
        case Backend.Authentication:
          this.authentication(buf, start, end);
          return true;
        case Backend.ParameterStatus: {
          this.expectAuthenticated(type);
          const { name, value } = decodeParameterStatus({ buf, start, end });
          this.server.params.set(name, value);
          return true;
        }
        case Backend.BackendKeyData: {
          this.expectAuthenticated(type);
          const view = Buffer.from(buf.buffer, buf.byteOffset + start, end - start);
          this.server.backendPid = view.readInt32BE(5);
          this.server.backendSecret = Buffer.from(view.subarray(9)); // 4 bytes in 3.0, up to 256 in 3.2
          return true;
        }
        case Backend.ReadyForQuery:
          this.expectAuthenticated(type);
          if (!this.startConnectQuery()) this.succeeded();
          return true;
        case Backend.ErrorResponse: {
          const e = decodeError(buf, start, end);
          if (e.fields.C === undefined || e.fields.M === undefined) {
            // not PostgreSQL's (CVE-2026-6666 class): clients get XX000, what PostgreSQL gives an error raised without a code
            const message = `server sent an error without ${e.fields.C === undefined ? "SQLSTATE" : "message"}: ${printable(e.message)}`;
            this.failed({ message, code: SqlState.InternalError, error: errorResponse(SqlState.InternalError, message, "FATAL") });
          } else this.failed({ message: e.message, code: e.code, error: Buffer.from(buf.subarray(start, end)) });
          return false;
        }
        case Backend.NoticeResponse:
        case Backend.NegotiateProtocolVersion:
          return true;
        default:
          throw new Error(`unexpected message '${String.fromCharCode(type)}' during login`);
      }
    } catch (err) {
      const code = err instanceof CredentialsError || err instanceof ScramKeysMismatch ? SqlState.InvalidAuthorizationSpecification : SqlState.ProtocolViolation;
      this.failed({ message: err instanceof Error ? err.message : String(err), code });
      return false;
    }
  }

  /**
   * libpq's order: the session's messages come after AuthenticationOk. A server that skips authentication (or a SCRAM
   * exchange's end, where it proves it holds the secret) is refused, not taken for logged in.
   */
  private expectAuthenticated(type: number): void {
    if (!this.authenticated) throw new Error(`expected authentication request from server, but received '${String.fromCharCode(type)}'`);
  }

  /** What to answer PostgreSQL's password request with: the entry's password, else the serverCredentials hook's answer. */
  private credentials(): ServerCredentials | undefined {
    const t = this.server.target;
    if (t.password !== undefined) return { kind: "password", password: t.password };
    const hook = this.server.core.hooks.serverCredentials;
    return hook.taps.length > 0 ? hook.call(t.user) : undefined;
  }

  private authentication(buf: Uint8Array, start: number, end: number): void {
    if (end - start < 9) throw new Error("invalid Authentication message from server");
    const view = Buffer.from(buf.buffer, buf.byteOffset + start, end - start);
    const code = view.readInt32BE(5);
    const user = this.server.target.user;
    if (this.scram !== null && code !== AuthCode.SASLContinue && code !== AuthCode.SASLFinal && !(code === AuthCode.Ok && this.scramVerified)) {
      // a server that skips the SCRAM exchange's end (its ServerSignature) has not proven it holds the secret
      throw new Error(`server sent authentication request ${code} in the middle of the SCRAM exchange`);
    }
    if (this.authenticated) throw new Error(`authentication request ${code} from server after AuthenticationOk`);
    switch (code) {
      case AuthCode.Ok:
        this.authenticated = true;
        return;
      case AuthCode.CleartextPassword: {
        const c = this.credentials();
        if (c?.kind !== "password") throw wrongCredentials(user, "a cleartext password", c);
        this.sendPassword(c.password);
        return;
      }
      case AuthCode.MD5Password: {
        if (end - start < 13) throw new Error("invalid AuthenticationMD5Password message from server");
        const c = this.credentials();
        const salt = view.subarray(9, 13);
        if (c?.kind === "password") this.sendPassword(md5PasswordResponse(user, c.password, salt));
        else if (c?.kind === "md5") this.sendPassword(md5SaltedResponse(c.secret.slice(3), salt));
        else throw wrongCredentials(user, "md5", c);
        return;
      }
      case AuthCode.SASL: {
        const mechanisms = decoder.decode(view.subarray(9)).split("\0").filter(Boolean);
        if (!mechanisms.includes("SCRAM-SHA-256")) throw new Error(`none of the server's SASL authentication mechanisms are supported (${mechanisms.join(", ").slice(0, 200)})`);
        const c = this.credentials();
        if (c?.kind === "password") this.scram = new ScramClient(c.password);
        else if (c?.kind === "scram" && c.keys !== null) this.scram = new ScramClient(c.keys);
        else throw wrongCredentials(user, "SCRAM-SHA-256", c);
        const first = Buffer.from(this.scram.clientFirst());
        const w = new MessageWriter(64).begin(Frontend.PasswordMessage).cstring("SCRAM-SHA-256").int32(first.length).bytes(first).end();
        this.server.out.send(w.finish());
        return;
      }
      case AuthCode.SASLContinue: {
        if (this.scram === null) throw new Error("AuthenticationSASLContinue without prior AuthenticationSASL");
        if (this.scramContinued) throw new Error("SCRAM exchange protocol error: received second AuthenticationSASLContinue");
        this.scramContinued = true;
        const final = this.scram.clientFinalMessage(decoder.decode(view.subarray(9)));
        if (typeof final === "string") this.sendSASLResponse(final);
        else {
          // a high iteration count: PBKDF2 runs off the event loop; the login may have ended meanwhile
          final.then(
            (f) => this.finished || this.sendSASLResponse(f),
            (err: unknown) => this.failed({ message: err instanceof Error ? err.message : String(err), code: SqlState.ProtocolViolation }),
          );
        }
        return;
      }
      case AuthCode.SASLFinal:
        if (this.scram === null || !this.scramContinued) throw new Error("AuthenticationSASLFinal without prior AuthenticationSASLContinue");
        if (this.scramVerified) throw new Error("SCRAM exchange protocol error: received second AuthenticationSASLFinal");
        this.scram.verifyServerFinal(decoder.decode(view.subarray(9)));
        this.scramVerified = true;
        return;
      default:
        throw new Error(`unsupported authentication request ${code} from server`);
    }
  }

  private sendSASLResponse(final: string): void {
    const bytes = Buffer.from(final);
    this.server.out.send(new MessageWriter(bytes.length + 8).begin(Frontend.PasswordMessage).bytes(bytes).end().finish());
  }

  private sendPassword(pw: string): void {
    this.server.out.send(new MessageWriter(pw.length + 8).begin(Frontend.PasswordMessage).cstring(pw).end().finish());
  }

  /** Sends the target's connect_query, if it has one: the server is offered to nobody before its answer. */
  private startConnectQuery(): boolean {
    const sql = this.server.target.connectQuery;
    if (sql === undefined || sql === "") return false;
    this.connectQuery = { error: null };
    // authentication is over: the query's answers may be as large as any query's
    this.server.framer.maxLength = this.server.core.config.settings.max_packet_size;
    this.server.out.send(query(sql));
    return true;
  }

  /**
   * The connect_query's answers. As in PgBouncer, its rows and notices are nobody's and its ParameterStatus values are
   * the server's (the welcome its pool's clients get); unlike PgBouncer, which logs an error and uses the server anyway,
   * an error, a COPY or a transaction left open fails the login: the server never serves a session it did not set up.
   */
  private connectQueryMessage(type: number, buf: Uint8Array, start: number, end: number): boolean {
    const running = this.connectQuery!;
    switch (type) {
      case Backend.ParameterStatus: {
        const { name, value } = decodeParameterStatus({ buf, start, end });
        this.server.params.set(name, value);
        return true;
      }
      case Backend.ErrorResponse: {
        const e = decodeError(buf, start, end);
        running.error ??= { message: e.fields.M === undefined ? printable(e.message) : e.message, code: e.fields.C ?? SqlState.InternalError };
        if (e.severity !== "FATAL" && e.severity !== "PANIC") return true;
        this.connectQueryFailed(running.error);
        return false;
      }
      case Backend.CopyInResponse:
      case Backend.CopyOutResponse:
      case Backend.CopyBothResponse:
        this.connectQueryFailed({ message: "it started COPY", code: SqlState.FeatureNotSupported });
        return false;
      case Backend.ReadyForQuery:
        if (running.error !== null) this.connectQueryFailed(running.error);
        else if (buf[start + 5] !== TxStatus.Idle) this.connectQueryFailed({ message: "it left a transaction open", code: SqlState.ActiveSqlTransaction });
        else {
          this.connectQuery = null;
          this.succeeded();
          return true;
        }
        return false;
      default:
        return true;
    }
  }

  /** A configuration matter: the pool's waiters get it at once (permanent), with PostgreSQL's SQLSTATE. */
  private connectQueryFailed(f: LoginFailure): void {
    const message = `connect_query failed on database "${this.server.target.database}": ${f.message}`;
    this.failed({ message, code: f.code, permanent: true });
  }

  private succeeded(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.timer) clearTimeout(this.timer);
    this.server.framer.maxLength = this.server.core.config.settings.max_packet_size;
    this.server.loginDone();
    this.resolve();
  }

  failed(f: LoginFailure): void {
    if (this.finished) return;
    this.finished = true;
    if (this.timer) clearTimeout(this.timer);
    this.server.loginDone();
    this.server.fatalSeen = f.error !== undefined;
    this.server.close(`login failed: ${f.message}`);
    this.reject(new LoginError(f));
  }
}
