// ErrorResponse and NoticeResponse: the one place pgbun builds errors for clients, and decodes the server's.
import { Backend } from "./codes.ts";
import { MessageWriter } from "./writer.ts";

/** SQLSTATE codes pgbun itself reports, named as in PostgreSQL's errcodes.txt. */
export const SqlState = {
  ProtocolViolation: "08P01",
  ConnectionFailure: "08006",
  SqlclientUnableToEstablishSqlconnection: "08001",
  InvalidAuthorizationSpecification: "28000",
  InvalidPassword: "28P01",
  InvalidCatalogName: "3D000",
  TooManyConnections: "53300",
  ProgramLimitExceeded: "54000",
  FeatureNotSupported: "0A000",
  AdminShutdown: "57P01",
  CannotConnectNow: "57P03",
  QueryCanceled: "57014",
  IdleInTransactionSessionTimeout: "25P03",
  IdleSessionTimeout: "57P05",
  InternalError: "XX000",
  ConfigurationLimitExceeded: "53400",
  InsufficientPrivilege: "42501",
  SyntaxError: "42601",
  ActiveSqlTransaction: "25001",
  InvalidParameterValue: "22023",
  InFailedSqlTransaction: "25P02",
  TransactionTimeout: "25P04",
} as const;
export type SqlStateCode = (typeof SqlState)[keyof typeof SqlState] | string;

export type Severity = "ERROR" | "FATAL" | "PANIC" | "WARNING" | "NOTICE" | "DEBUG" | "INFO" | "LOG";

export interface ErrorFields {
  severity: Severity;
  code: SqlStateCode;
  message: string;
  detail?: string;
  hint?: string;
  /** The server routine that raised it (R): drivers such as postgres.js decide on retries by it. */
  routine?: string;
}

function build(type: number, f: ErrorFields): Buffer {
  const w = new MessageWriter(128).begin(type);
  w.int8(0x53).cstring(f.severity); // S
  w.int8(0x56).cstring(f.severity); // V (non-localized)
  w.int8(0x43).cstring(f.code); // C
  w.int8(0x4d).cstring(f.message); // M
  if (f.detail) w.int8(0x44).cstring(f.detail); // D
  if (f.hint) w.int8(0x48).cstring(f.hint); // H
  if (f.routine) w.int8(0x52).cstring(f.routine); // R
  return w.int8(0).end().finish();
}

/** An ErrorResponse from pgbun; FATAL ones are followed by closing the connection. */
export function errorResponse(code: SqlStateCode, message: string, severity: Severity = "ERROR", detail?: string): Buffer {
  return build(Backend.ErrorResponse, { severity, code, message, detail });
}

/** An ErrorResponse with every field given (for standing in for one PostgreSQL would send, routine included). */
export function errorResponseOf(fields: ErrorFields): Buffer {
  return build(Backend.ErrorResponse, fields);
}

export function noticeResponse(message: string, code: SqlStateCode = "00000", severity: Severity = "NOTICE", detail?: string): Buffer {
  return build(Backend.NoticeResponse, { severity, code, message, detail });
}

/** Decoded fields of an ErrorResponse/NoticeResponse body; missing fields get safe defaults. */
export interface DecodedError {
  severity: string;
  code: string;
  message: string;
  detail?: string;
  hint?: string;
  fields: Record<string, string>;
}

/** Decodes an ErrorResponse or NoticeResponse given the whole message (header included). */
export function decodeError(buf: Uint8Array, start = 0, end = buf.length): DecodedError {
  const fields: Record<string, string> = {};
  let i = start + 5;
  const dec = new TextDecoder();
  while (i < end && buf[i] !== 0) {
    const key = String.fromCharCode(buf[i]!);
    let j = i + 1;
    while (j < end && buf[j] !== 0) j++;
    fields[key] = dec.decode(buf.subarray(i + 1, j));
    i = j + 1;
  }
  return {
    severity: fields.V ?? fields.S ?? "ERROR",
    code: fields.C ?? SqlState.InternalError, // a server that omits SQLSTATE must not crash us
    message: fields.M ?? "(no message)",
    detail: fields.D,
    hint: fields.H,
    fields,
  };
}
