// PostgreSQL wire-protocol message type bytes and fixed codes, named as in the protocol docs.

/** Frontend (client to server) message types. */
export const Frontend = {
  Bind: 0x42, // 'B'
  Close: 0x43, // 'C'
  CopyData: 0x64, // 'd'
  CopyDone: 0x63, // 'c'
  CopyFail: 0x66, // 'f'
  Describe: 0x44, // 'D'
  Execute: 0x45, // 'E'
  Flush: 0x48, // 'H'
  FunctionCall: 0x46, // 'F'
  Parse: 0x50, // 'P'
  PasswordMessage: 0x70, // 'p' (also SASLInitialResponse, SASLResponse, GSSResponse)
  Query: 0x51, // 'Q'
  Sync: 0x53, // 'S'
  Terminate: 0x58, // 'X'
} as const;

/** Backend (server to client) message types. */
export const Backend = {
  Authentication: 0x52, // 'R'
  BackendKeyData: 0x4b, // 'K'
  BindComplete: 0x32, // '2'
  CloseComplete: 0x33, // '3'
  CommandComplete: 0x43, // 'C'
  CopyBothResponse: 0x57, // 'W'
  CopyData: 0x64, // 'd'
  CopyDone: 0x63, // 'c'
  CopyInResponse: 0x47, // 'G'
  CopyOutResponse: 0x48, // 'H'
  DataRow: 0x44, // 'D'
  EmptyQueryResponse: 0x49, // 'I'
  ErrorResponse: 0x45, // 'E'
  FunctionCallResponse: 0x56, // 'V'
  NegotiateProtocolVersion: 0x76, // 'v'
  NoData: 0x6e, // 'n'
  NoticeResponse: 0x4e, // 'N'
  NotificationResponse: 0x41, // 'A'
  ParameterDescription: 0x74, // 't'
  ParameterStatus: 0x53, // 'S'
  ParseComplete: 0x31, // '1'
  PortalSuspended: 0x73, // 's'
  ReadyForQuery: 0x5a, // 'Z'
  RowDescription: 0x54, // 'T'
} as const;

export type FrontendName = keyof typeof Frontend;
export type BackendName = keyof typeof Backend;

/** Codes carried in the version field of untyped startup-phase packets. */
export const StartupCode = {
  Protocol30: 196608, // 3.0
  CancelRequest: 80877102,
  SSLRequest: 80877103,
  GSSENCRequest: 80877104,
} as const;

/** Authentication request sub-codes of the 'R' message. */
export const AuthCode = {
  Ok: 0,
  KerberosV5: 2,
  CleartextPassword: 3,
  MD5Password: 5,
  GSS: 7,
  GSSContinue: 8,
  SSPI: 9,
  SASL: 10,
  SASLContinue: 11,
  SASLFinal: 12,
} as const;

/** ReadyForQuery transaction status bytes. */
export const TxStatus = { Idle: 0x49, InTransaction: 0x54, Failed: 0x45 } as const; // 'I' 'T' 'E'

/** Longest startup packet accepted, as PostgreSQL's MAX_STARTUP_PACKET_LENGTH. */
export const MAX_STARTUP_PACKET = 10000;

const frontendNames: string[] = [];
const backendNames: string[] = [];
for (const [name, code] of Object.entries(Frontend)) frontendNames[code] = name;
for (const [name, code] of Object.entries(Backend)) backendNames[code] = name;

/** Message name for logs and errors; unknown bytes are shown as the character. */
export function frontendName(code: number): string {
  return frontendNames[code] ?? `'${String.fromCharCode(code)}'`;
}
export function backendName(code: number): string {
  return backendNames[code] ?? `'${String.fromCharCode(code)}'`;
}

/** Resolves a message name or single-character code to its type byte for a direction. */
export function messageCode(direction: "frontend" | "backend", key: string | number): number {
  if (typeof key === "number") return key;
  const table: Record<string, number> = direction === "frontend" ? Frontend : Backend;
  const code = table[key];
  if (code !== undefined) return code;
  if (key.length === 1) return key.charCodeAt(0);
  throw new Error(`unknown ${direction} message type ${JSON.stringify(key)}`);
}
