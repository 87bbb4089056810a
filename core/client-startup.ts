// The client's startup phase: SSLRequest/GSSENCRequest, CancelRequest, StartupMessage, authentication, welcome.
import { Backend, Frontend, MAX_STARTUP_PACKET, StartupCode } from "../plugin-sdk/protocol/codes.ts";
import { SqlState } from "../plugin-sdk/protocol/errors.ts";
import { negotiateProtocolVersion, parameterStatus, Prebuilt } from "../plugin-sdk/protocol/writer.ts";
import type { ClientConnection, PoolMode } from "./client.ts";
import { PluginFault } from "./plugin/fault.ts";
import { intern } from "./intern.ts";
import { isThenable, runBail } from "./login-hooks.ts";
import { startClientTls } from "./net/tls-client.ts";
import { startDirectTls, TLS_HANDSHAKE_RECORD } from "./net/direct-tls.ts";
import { decodeBytes, replaceEscapedBytes } from "../plugin-sdk/protocol/text-bytes.ts";

/** Parameters the server reports with ParameterStatus, by lower-case name, with their canonical spelling. */
const REPORTED = new Map(
  ["client_encoding", "DateStyle", "TimeZone", "standard_conforming_strings", "application_name", "IntervalStyle"].map((n) => [
    n.toLowerCase(),
    n,
  ]),
);
/**
 * The longest authentication message a client may send during login (PostgreSQL's PG_MAX_AUTH_TOKEN_LENGTH), and
 * what a client may have buffered while logging in before its socket is paused: a hostile client cannot make
 * the login phase hold more.
 */
const MAX_LOGIN_MESSAGE = 65535;
const LOGIN_READ_LIMIT = MAX_STARTUP_PACKET + MAX_LOGIN_MESSAGE;
const NO_BYTES = Buffer.alloc(0);
const SETTING_NAME = /^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$/;

/** Startup-phase bytes: untyped packets until the StartupMessage is accepted. */
export function startupData(client: ClientConnection, chunk: Uint8Array): void {
  let buf = client.startupBuf ? Buffer.concat([client.startupBuf, chunk]) : Buffer.from(chunk);
  const whole = buf; // our own copy: kept as it is while no packet was cut from it
  client.startupBuf = null;
  while (client.state === "login" && !client.startupSeen) {
    if (buf.length > 0 && buf[0] === Frontend.Terminate) {
      // a client giving up before its startup packet (e.g. after a refused SSLRequest): PostgreSQL and PgBouncer
      // close without a word. Read as a length, that byte would put the packet far beyond any startup packet's.
      if (buf.length < 5) break;
      client.close("client terminated before startup");
      return;
    }
    if (buf.length < 8) break;
    const len = buf.readInt32BE(0);
    if (len < 8 || len > MAX_STARTUP_PACKET) {
      // a TLS record as the connection's first bytes, before anything was answered: PostgreSQL 17's direct TLS
      if (buf[0] === TLS_HANDSHAKE_RECORD && client.bytesSent === 0 && client.tls === null) return startDirectTls(client, buf);
      client.fatal(SqlState.ProtocolViolation, "invalid length of startup packet");
      return;
    }
    if (buf.length < len) break;
    const packet = buf.subarray(0, len);
    buf = buf.subarray(len);
    const code = packet.readInt32BE(4);
    if (code === StartupCode.SSLRequest || code === StartupCode.GSSENCRequest) {
      if (len !== 8) return client.fatal(SqlState.ProtocolViolation, "invalid length of encryption request");
      // bytes behind the request were sent before any answer, so not under TLS: a man in the middle may have put
      // them there (CVE-2021-23214, PgBouncer's CVE-2021-3935). PostgreSQL refuses them, whatever it answers.
      const tls = client.core.clientTls;
      // GSS encryption is not offered; TLS is, except on the Unix socket (as PgBouncer) and once a session is up
      const offerTls = code === StartupCode.SSLRequest && tls !== null && !client.viaUnixSocket && client.tls === null;
      if (buf.length > 0) {
        // refusing TLS, PostgreSQL sends its 'N' and then the error; accepting it, we refuse before the 'S'
        if (!offerTls) client.out.send(Prebuilt.SSLRefused);
        return client.fatal(SqlState.ProtocolViolation, "received unencrypted data after SSL request");
      }
      if (offerTls) return startClientTls(client, tls, client.core.tlsClientHandlers!);
      client.out.send(Prebuilt.SSLRefused);
      continue;
    }
    if (code === StartupCode.CancelRequest) {
      client.core.cancel.handleRequest(packet);
      client.close("cancel request");
      return;
    }
    if (client.tls === null && client.core.clientTls?.required === true && !client.viaUnixSocket) {
      return client.fatal(SqlState.InvalidAuthorizationSpecification, "SSL required");
    }
    // what came behind the StartupMessage is the login's before it runs: with only sync taps it may welcome the
    // client (and hand it those bytes) before returning here
    client.startupBuf = buf.length > 0 ? Buffer.from(buf) : null;
    buf = NO_BYTES;
    void login(client, packet); // sets the user (startupSeen) before anything can wait, or closes the client
  }
  if (buf.length > 0) client.startupBuf = buf === whole ? buf : Buffer.from(buf);
  if (client.state !== "login" || !client.startupSeen) return;
  if (client.loginWaiter !== null) deliverLoginMessage(client);
  else if ((client.startupBuf?.length ?? 0) > LOGIN_READ_LIMIT) client.pauseReading(); // resumed by the next read or the welcome
}

/**
 * Client.readLoginMessage: the client's next message during login (a PasswordMessage, SASLInitialResponse or
 * SASLResponse, all type 'p'), whole (type byte and length included), once it has arrived; rejects when the client
 * goes away or is refused first (client_login_timeout included: the janitor closes a client still logging in).
 */
export function readLoginMessage(client: ClientConnection): Promise<Uint8Array> {
  if (client.state !== "login" || !client.startupSeen) return Promise.reject(new Error("readLoginMessage: the client is not logging in"));
  if (client.loginWaiter !== null) return Promise.reject(new Error("readLoginMessage: a read is already pending"));
  return new Promise<Uint8Array>((resolve, reject) => {
    client.loginWaiter = { resolve, reject };
    client.resumeReading();
    deliverLoginMessage(client);
  });
}

/** Hands the pending readLoginMessage the buffered message once it is whole; refuses anything else the client sends. */
function deliverLoginMessage(client: ClientConnection): void {
  const buf = client.startupBuf;
  if (buf === null || buf.length === 0) return;
  const type = buf[0]!;
  if (type === Frontend.Terminate) return client.close("client terminated during login");
  if (type !== Frontend.PasswordMessage) {
    return client.fatal(SqlState.ProtocolViolation, `expected password response, got message type ${type}`);
  }
  if (buf.length < 5) return;
  const len = buf.readInt32BE(1);
  if (len < 4 || len - 4 > MAX_LOGIN_MESSAGE) return client.fatal(SqlState.ProtocolViolation, "invalid message length");
  if (buf.length < len + 1) return;
  // the buffer is the login's own (startupData's copy): a message that is all of it is taken as it is; one with
  // bytes behind it is copied, so the rest of the buffer goes on without it
  const message = buf.length === len + 1 ? buf : Buffer.from(buf.subarray(0, len + 1));
  client.startupBuf = buf.length > len + 1 ? buf.subarray(len + 1) : null;
  const waiter = client.loginWaiter!;
  client.loginWaiter = null;
  waiter.resolve(message);
}

/** A closing client's pending readLoginMessage fails (called by ClientConnection.close). */
export function abandonLoginMessage(client: ClientConnection): void {
  const waiter = client.loginWaiter;
  if (waiter === null) return;
  client.loginWaiter = null;
  waiter.reject(new Error("the client went away during login"));
}

/** Splits libpq's `options` value: whitespace separates, backslash escapes. */
function splitOptions(s: string): string[] {
  const out: string[] = [];
  let cur = "";
  let escaped = false;
  let any = false;
  for (const ch of s) {
    if (escaped) {
      cur += ch;
      escaped = false;
      any = true;
    } else if (ch === "\\") escaped = true;
    else if (ch === " " || ch === "\t" || ch === "\n") {
      if (any) out.push(cur);
      cur = "";
      any = false;
    } else {
      cur += ch;
      any = true;
    }
  }
  if (any) out.push(cur);
  return out;
}

/** Applies `-c name=value` / `--name=value` from the options parameter to the client's settings. */
function applyOptions(client: ClientConnection, options: string): string | null {
  const words = splitOptions(options);
  for (let i = 0; i < words.length; i++) {
    let w = words[i]!;
    if (w === "-c") w = words[++i] ?? "";
    else if (w.startsWith("-c")) w = w.slice(2);
    else if (w.startsWith("--")) w = w.slice(2);
    else return `unsupported option "${w}" in options`;
    const eq = w.indexOf("=");
    if (eq <= 0) return `invalid option "${w}" in options`;
    const err = setParam(client, w.slice(0, eq).replace(/-/g, "_"), w.slice(eq + 1));
    if (err) return err;
  }
  return null;
}

function setParam(client: ClientConnection, name: string, value: string): string | null {
  const reported = REPORTED.get(name.toLowerCase()) ?? client.core.trackedExtra.get(name.toLowerCase());
  if (reported) {
    client.params.set(reported, value);
    client.startupValues.set(reported, value);
    return null;
  }
  if (!SETTING_NAME.test(name)) return `invalid parameter name "${name}"`;
  client.settings.set(name.toLowerCase(), value);
  client.startupValues.set(name.toLowerCase(), value);
  return null;
}

/** ignore_startup_parameters in lower case, made again only when the setting's list is another (a reload, a SET). */
let ignored: { list: readonly string[]; length: number; names: Set<string> } | null = null;
function ignoredNames(list: readonly string[]): Set<string> {
  if (ignored === null || ignored.list !== list || ignored.length !== list.length) {
    ignored = { list, length: list.length, names: new Set(list.map((s) => s.toLowerCase())) };
  }
  return ignored.names;
}

/** Parses the StartupMessage and runs the login sequence through the hooks. */
async function login(client: ClientConnection, packet: Buffer): Promise<void> {
  const core = client.core;
  const version = packet.readInt32BE(4);
  const major = version >>> 16;
  const minor = version & 0xffff;
  if (major !== 3) {
    return client.fatal(SqlState.FeatureNotSupported, `unsupported frontend protocol ${major}.${minor}: server supports 3.0 to 3.0`);
  }
  const unsupported: string[] = [];
  let i = 8;
  const strings: string[] = [];
  const end = packet.length;
  while (i < end) {
    // one pass finds the terminator and whether the string is ASCII (nearly all are: read without a decoder)
    let j = i;
    let high = 0;
    for (; j < end; j++) {
      const b = packet[j]!;
      if (b === 0) break;
      high |= b;
    }
    if (j === end) return client.fatal(SqlState.ProtocolViolation, "invalid startup packet layout: expected terminator as last byte");
    // bytes that are no UTF-8 are kept as they are (text-bytes.ts), and go to PostgreSQL unchanged
    strings.push(intern(high < 0x80 ? packet.toString("latin1", i, j) : decodeBytes(packet, i, j)));
    i = j + 1;
  }
  if (strings.length % 2 !== 1 || strings[strings.length - 1] !== "") {
    return client.fatal(SqlState.ProtocolViolation, "invalid startup packet layout: expected terminator as last byte");
  }
  const ignore = ignoredNames(core.config.settings.ignore_startup_parameters);
  for (let k = 0; k + 1 < strings.length; k += 2) {
    const name = strings[k]!;
    // PostgreSQL turns each non-ASCII byte of application_name into "?"; a byte that is no UTF-8 could not be SET
    const value = name === "application_name" ? replaceEscapedBytes(strings[k + 1]!) : strings[k + 1]!;
    if (name === "user") {
      client.user = value;
      continue;
    }
    if (name === "database") {
      client.database = value;
      continue;
    }
    if (name.startsWith("_pq_.")) {
      unsupported.push(name);
      continue;
    }
    client.startupParams.set(name, value);
    if (name === "replication") {
      if (value !== "false" && value !== "off" && value !== "0" && value !== "no") {
        return client.fatal(SqlState.FeatureNotSupported, "replication connections are not supported by pgbun: connect to PostgreSQL directly");
      }
    } else if (ignore.has(name.toLowerCase())) continue;
    else if (name === "options") {
      const err = applyOptions(client, value);
      if (err) return client.fatal(SqlState.ProtocolViolation, err);
    } else {
      const err = setParam(client, name, value);
      if (err) return client.fatal(SqlState.ProtocolViolation, err);
    }
  }
  if (!client.user) return client.fatal(SqlState.InvalidAuthorizationSpecification, "no PostgreSQL user name specified in startup packet");
  if (!client.database) client.database = client.user;
  if (core.config.settings.application_name_add_host) {
    const app = client.params.get("application_name") ?? "";
    client.params.set("application_name", `${app} - ${client.addr}:${client.port}`);
  }
  if (minor > 0 || unsupported.length > 0) client.out.send(negotiateProtocolVersion(0, unsupported));

  try {
    // each hook is awaited only when a tap left something pending: a login of sync taps makes no promise
    const started = runBail(core.hooks.startup, client);
    const startRefusal = isThenable(started) ? await started : started;
    if (client.closed) return;
    if (startRefusal) return client.refuse(startRefusal);
    if (!client.virtual) {
      // a startup tap may have routed the client (PluginApi.route) to another entry already
      const entry = client.dbEntry ?? core.resolveDatabase(client.database);
      if (!entry) return client.fatal(SqlState.InvalidCatalogName, `no such database: ${client.database}`);
      client.dbEntry = entry;
      const userEntry = core.config.users[client.user];
      client.poolMode = (userEntry?.pool_mode ?? entry.pool_mode ?? core.config.settings.pool_mode) as PoolMode;
    }
    const authenticated = runBail(core.hooks.authenticate, client);
    const authRefusal = isThenable(authenticated) ? await authenticated : authenticated;
    if (client.closed) return;
    if (authRefusal) return client.refuse(authRefusal);
    // batched, not written: it goes out with the welcome in one write (as PgBouncer's welcome_client), or ahead of
    // whatever is written to the client first (a refusal, a notice), in order either way
    client.out.push(Prebuilt.AuthenticationOk);
    const joined = runBail(core.hooks.authenticated, client);
    const poolRefusal = isThenable(joined) ? await joined : joined;
    if (client.closed) return;
    if (poolRefusal) return client.refuse(poolRefusal);
  } catch (err) {
    // a client that went away mid-exchange (psql asking for a password reconnects) fails the tap's read: no fault
    if (client.closed) return;
    const fault = PluginFault.from(err);
    core.log.error({ client: client.label, plugin: fault.plugin, err: fault.logged }, `plugin ${fault.plugin} failed during login`);
    return client.fatal(SqlState.InternalError, `plugin "${fault.plugin}" failed: ${fault.reason}`);
  }
  welcome(client);
}

/**
 * The ParameterStatus messages of a pool's welcome values, built once per pool and set of names the client
 * overrides (most clients of an application override the same ones): a login then writes one shared buffer
 * instead of building a dozen messages. Bounded per pool; beyond that the block is built for the client alone.
 */
const welcomeBlocks = new WeakMap<ReadonlyMap<string, string>, Map<number | string, Buffer>>();
const MAX_BLOCKS_PER_POOL = 32;
/** Up to this many welcome names, which of them the client overrides is a bit mask (no string made per login). */
const MASK_NAMES = 30;

function welcomeBlock(client: ClientConnection): Buffer {
  const welcome = client.welcomeParams;
  const own = client.params;
  let key: number | string = 0;
  if (own.size > 0) {
    if (welcome.size <= MASK_NAMES) {
      let bit = 1;
      for (const name of welcome.keys()) {
        if (own.has(name)) key |= bit;
        bit <<= 1;
      }
    } else {
      let names = "";
      for (const name of own.keys()) if (welcome.has(name)) names += name + "\0";
      key = names;
    }
  }
  let blocks = welcomeBlocks.get(welcome);
  const hit = blocks?.get(key);
  if (hit !== undefined) return hit;
  const parts: Buffer[] = [];
  for (const [name, value] of welcome) if (!own.has(name)) parts.push(parameterStatus(name, value));
  const block = Buffer.concat(parts);
  if (blocks === undefined) welcomeBlocks.set(welcome, (blocks = new Map()));
  if (blocks.size < MAX_BLOCKS_PER_POOL) blocks.set(key, block);
  return block;
}

/**
 * The ParameterStatus of a parameter the client set itself, by name: the last value's message, kept when the next
 * client of the application sets the same (names are the reported ones and track_extra_parameters: bounded).
 */
const ownStatus = new Map<string, { value: string; message: Buffer }>();
const MAX_OWN_STATUS = 64;

function ownStatusMessage(name: string, value: string): Buffer {
  const last = ownStatus.get(name);
  if (last !== undefined && last.value === value) return last.message;
  const message = parameterStatus(name, value);
  if (last !== undefined) {
    last.value = value;
    last.message = message;
  } else if (ownStatus.size < MAX_OWN_STATUS) ownStatus.set(name, { value, message });
  return message;
}

/** BackendKeyData: type, length, pid, secret. */
const BACKEND_KEY_DATA_LENGTH = 13;

/** ParameterStatus of the client's own values, BackendKeyData and ReadyForQuery: one buffer, written once. */
function welcomeTail(client: ClientConnection): Buffer {
  const own = client.params;
  let size = BACKEND_KEY_DATA_LENGTH + Prebuilt.ReadyForQueryIdle.length;
  let statuses: Buffer[] | null = null;
  if (own.size > 0) {
    statuses = [];
    for (const name of own.keys()) {
      const m = ownStatusMessage(name, own.get(name)!);
      statuses.push(m);
      size += m.length;
    }
  }
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  if (statuses !== null) {
    for (const m of statuses) {
      out.set(m, at);
      at += m.length;
    }
  }
  out[at] = Backend.BackendKeyData;
  out.writeInt32BE(12, at + 1);
  out.writeInt32BE(client.cancelPid | 0, at + 5);
  out.writeInt32BE(client.cancelSecret | 0, at + 9);
  out.set(Prebuilt.ReadyForQueryIdle, at + BACKEND_KEY_DATA_LENGTH);
  return out;
}

/** ParameterStatus for each parameter, BackendKeyData, ReadyForQuery: the client is in. */
function welcome(client: ClientConnection): void {
  const core = client.core;
  client.out.push(welcomeBlock(client));
  core.cancel.register(client);
  // AuthenticationOk, pushed before the authenticated hook, goes out in the same write
  client.out.push(welcomeTail(client));
  client.out.flush(null);
  client.startupParams = client.startupParams.readOnly();
  client.startupValues = client.startupValues.readOnly();
  client.params.share();
  client.setState("active");
  client.shedIO();
  if (core.config.settings.log_connections && core.log.isLevelEnabled("info")) {
    core.log.info({ client: client.label, user: client.user, database: client.database, addr: client.addr }, "login");
  }
  const rest = client.startupBuf;
  client.startupBuf = null;
  client.resumeReading(); // paused if it sent LOGIN_READ_LIMIT bytes before its login was answered
  if (rest && rest.length > 0) client.onData(rest);
}

