// Logs a server connection in to PostgreSQL: StartupMessage, trust/cleartext/md5/SCRAM-SHA-256, within server_connect_timeout.
import { AuthCode, Backend, Frontend } from "../plugin-sdk/protocol/codes.ts";
import { decodeError, SqlState } from "../plugin-sdk/protocol/errors.ts";
import { decodeParameterStatus } from "../plugin-sdk/protocol/decode.ts";
import { MessageWriter, startupMessage } from "../plugin-sdk/protocol/writer.ts";
import { md5PasswordResponse, ScramClient } from "./auth/scram-client.ts";
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

export class ServerLogin {
  private resolve!: () => void;
  private reject!: (e: LoginError) => void;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private scram: ScramClient | null = null;
  private finished = false;

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
    const params: Record<string, string> = { user: t.user, database: t.database, ...t.startupParams };
    this.server.out.send(startupMessage(params));
  }

  message(type: number, buf: Uint8Array, start: number, end: number): boolean {
    try {
      switch (type) {
        case Backend.Authentication:
          this.authentication(buf, start, end);
          return true;
        case Backend.ParameterStatus: {
          const { name, value } = decodeParameterStatus({ buf, start, end });
          this.server.params.set(name, value);
          return true;
        }
        case Backend.BackendKeyData: {
          const view = Buffer.from(buf.buffer, buf.byteOffset + start, end - start);
          this.server.backendPid = view.readInt32BE(5);
          this.server.backendSecret = Buffer.from(view.subarray(9)); // 4 bytes in 3.0, up to 256 in 3.2
          return true;
        }
        case Backend.ReadyForQuery:
          this.succeeded();
          return true;
        case Backend.ErrorResponse: {
          const e = decodeError(buf, start, end);
          this.failed({ message: e.message, code: e.code, error: Buffer.from(buf.subarray(start, end)) });
          return false;
        }
        case Backend.NoticeResponse:
        case Backend.NegotiateProtocolVersion:
          return true;
        default:
          throw new Error(`unexpected message '${String.fromCharCode(type)}' during login`);
      }
    } catch (err) {
      this.failed({ message: err instanceof Error ? err.message : String(err), code: SqlState.ProtocolViolation });
      return false;
    }
  }

  private authentication(buf: Uint8Array, start: number, end: number): void {
    const view = Buffer.from(buf.buffer, buf.byteOffset + start, end - start);
    const code = view.readInt32BE(5);
    const t = this.server.target;
    const needPassword = () => {
      if (t.password === undefined) throw new Error(`server asks for a password for user "${t.user}" and none is configured`);
      return t.password;
    };
    switch (code) {
      case AuthCode.Ok:
        return;
      case AuthCode.CleartextPassword:
        this.sendPassword(needPassword());
        return;
      case AuthCode.MD5Password:
        this.sendPassword(md5PasswordResponse(t.user, needPassword(), view.subarray(9, 13)));
        return;
      case AuthCode.SASL: {
        const mechanisms = decoder.decode(view.subarray(9)).split("\0").filter(Boolean);
        if (!mechanisms.includes("SCRAM-SHA-256")) throw new Error(`server offers no supported SASL mechanism (${mechanisms.join(", ")})`);
        this.scram = new ScramClient(needPassword());
        const first = Buffer.from(this.scram.clientFirst());
        const w = new MessageWriter(64).begin(Frontend.PasswordMessage).cstring("SCRAM-SHA-256").int32(first.length).bytes(first).end();
        this.server.out.send(w.finish());
        return;
      }
      case AuthCode.SASLContinue: {
        if (!this.scram) throw new Error("SASLContinue without SASL");
        const final = Buffer.from(this.scram.clientFinal(decoder.decode(view.subarray(9))));
        this.server.out.send(new MessageWriter(final.length + 8).begin(Frontend.PasswordMessage).bytes(final).end().finish());
        return;
      }
      case AuthCode.SASLFinal:
        if (!this.scram) throw new Error("SASLFinal without SASL");
        this.scram.verifyServerFinal(decoder.decode(view.subarray(9)));
        return;
      default:
        throw new Error(`unsupported authentication request ${code} from server`);
    }
  }

  private sendPassword(pw: string): void {
    this.server.out.send(new MessageWriter(pw.length + 8).begin(Frontend.PasswordMessage).cstring(pw).end().finish());
  }

  private succeeded(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.timer) clearTimeout(this.timer);
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
