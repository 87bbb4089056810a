// The TLS settings as Bun's TLS options: PgBouncer's protocol and cipher spellings, key/cert/CA files read at (re)load.
import { constants } from "node:crypto";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { TLSOptions } from "bun";
import type { Settings, SslMode } from "../../plugin-sdk/config.ts";

/**
 * PgBouncer's cipher shortcuts (libusual's tls, after libtls): its "default" and "secure" are one list. They apply
 * to TLS 1.2 and below; TLS 1.3 suites are not chosen by this list.
 */
const CIPHER_LISTS: Record<string, string> = {
  default: "HIGH+EECDH:HIGH+EDH:!SSLv3:!SHA384:!SHA256:!DSS:!aNULL",
  secure: "HIGH+EECDH:HIGH+EDH:!SSLv3:!SHA384:!SHA256:!DSS:!aNULL",
  compat: "HIGH:+3DES:!aNULL",
  legacy: "HIGH:+3DES:!aNULL",
  insecure: "ALL:!aNULL:!eNULL",
  all: "ALL:!aNULL:!eNULL",
  normal: "HIGH+EECDH:HIGH+EDH:HIGH+RSA:+SHA384:+SHA256:+SSLv3:+EDH:+RSA:-3DES:3DES+RSA:!CAMELLIA:!DSS:!aNULL",
  fast: "HIGH+EECDH:HIGH+EDH:HIGH+RSA:+AES256:+SHA256:+SHA384:+SSLv3:+EDH:+RSA:-3DES:3DES+RSA:!CAMELLIA:!DSS:!aNULL",
};

/** The OpenSSL option that turns each version off. */
const VERSIONS: Record<string, number> = {
  "tlsv1.0": constants.SSL_OP_NO_TLSv1,
  "tlsv1.1": constants.SSL_OP_NO_TLSv1_1,
  "tlsv1.2": constants.SSL_OP_NO_TLSv1_2,
  "tlsv1.3": constants.SSL_OP_NO_TLSv1_3,
};
const ALL_VERSIONS = Object.keys(VERSIONS);
const GROUPS: Record<string, string[]> = {
  all: ALL_VERSIONS,
  legacy: ALL_VERSIONS,
  secure: ["tlsv1.2", "tlsv1.3"],
  default: ["tlsv1.2", "tlsv1.3"],
};

/**
 * A `*_tls_protocols` value as the `secureOptions` bits that turn the other versions off. As libtls reads it:
 * names separated by commas or colons, a leading `!` or `-` removes a version.
 */
export function protocolOptions(spec: string, setting: string): number {
  const on = new Set<string>();
  for (const raw of spec.toLowerCase().split(/[,:\s]+/)) {
    if (raw === "") continue;
    const negate = raw.startsWith("!") || raw.startsWith("-");
    const name = negate ? raw.slice(1) : raw;
    const versions = GROUPS[name] ?? (VERSIONS[name] !== undefined ? [name] : null);
    if (versions === null) throw new Error(`${setting}: unknown TLS protocol "${raw}" (tlsv1.0, tlsv1.1, tlsv1.2, tlsv1.3, all, secure, legacy)`);
    for (const v of versions) (negate ? on.delete(v) : on.add(v));
  }
  if (on.size === 0) throw new Error(`${setting}: no TLS protocol left in "${spec}"`);
  let off = 0;
  for (const v of ALL_VERSIONS) if (!on.has(v)) off |= VERSIONS[v]!;
  return off;
}

/** A `*_tls_ciphers` value as an OpenSSL cipher list. */
export function cipherList(spec: string): string {
  return CIPHER_LISTS[spec.trim().toLowerCase()] ?? spec;
}

function readPem(dir: string, file: string, setting: string): Buffer {
  try {
    return readFileSync(resolve(dir, file));
  } catch (err) {
    throw new Error(`${setting}: cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** ALPN as the TLS wire spells it (length-prefixed names): PostgreSQL 17's protocol name. */
export const ALPN_POSTGRESQL = Buffer.from("\x0apostgresql", "latin1");

/** TLS towards clients, as loaded from the settings: null when client_tls_sslmode is disable. */
export interface ClientTlsConfig {
  readonly mode: SslMode;
  /** Plaintext StartupMessages are refused (require and above). */
  readonly required: boolean;
  /** A verified client certificate is required (verify-ca, verify-full). */
  readonly verifyPeer: boolean;
  readonly options: TLSOptions;
}

/** TLS towards servers, as loaded from the settings. */
export interface ServerTlsConfig {
  readonly mode: SslMode;
  readonly options: TLSOptions;
}

/** Reads the client-side TLS files and settings; throws with the setting's name when they cannot serve. */
export function loadClientTls(s: Settings, dir: string): ClientTlsConfig | null {
  const mode = s.client_tls_sslmode;
  if (mode === "disable") return null;
  if (s.client_tls_key_file === "" || s.client_tls_cert_file === "") throw new Error(`client_tls_sslmode ${mode} needs client_tls_key_file and client_tls_cert_file`);
  const verifyPeer = mode === "verify-ca" || mode === "verify-full";
  if (verifyPeer && s.client_tls_ca_file === "") throw new Error(`client_tls_sslmode ${mode} needs client_tls_ca_file`);
  const ca = s.client_tls_ca_file !== "" ? readPem(dir, s.client_tls_ca_file, "client_tls_ca_file") : undefined;
  const options: TLSOptions = {
    cert: readPem(dir, s.client_tls_cert_file, "client_tls_cert_file"),
    key: readPem(dir, s.client_tls_key_file, "client_tls_key_file"),
    ca,
    // with a CA, every client is asked for a certificate (auth_type cert, hostssl); only verify-* insist on one,
    // judged after the handshake so the client is told why in an ErrorResponse
    requestCert: ca !== undefined,
    rejectUnauthorized: false,
    secureOptions: protocolOptions(s.client_tls_protocols, "client_tls_protocols"),
    ciphers: cipherList(s.client_tls_ciphers),
    // a client offering ALPN must offer "postgresql" (PostgreSQL 17); one offering none is served
    ALPNProtocols: ALPN_POSTGRESQL,
  };
  return { mode, required: mode !== "allow" && mode !== "prefer", verifyPeer, options };
}

/** Reads the server-side TLS files and settings; throws with the setting's name when they cannot serve. */
export function loadServerTls(s: Settings, dir: string): ServerTlsConfig {
  const mode = s.server_tls_sslmode;
  if ((mode === "verify-ca" || mode === "verify-full") && s.server_tls_ca_file === "") throw new Error(`server_tls_sslmode ${mode} needs server_tls_ca_file`);
  if ((s.server_tls_cert_file === "") !== (s.server_tls_key_file === "")) throw new Error("server_tls_cert_file and server_tls_key_file go together");
  const options: TLSOptions = {
    ca: s.server_tls_ca_file !== "" ? readPem(dir, s.server_tls_ca_file, "server_tls_ca_file") : undefined,
    cert: s.server_tls_cert_file !== "" ? readPem(dir, s.server_tls_cert_file, "server_tls_cert_file") : undefined,
    key: s.server_tls_key_file !== "" ? readPem(dir, s.server_tls_key_file, "server_tls_key_file") : undefined,
    // verification is judged after the handshake by server_tls_sslmode (verify-ca ignores the host name)
    rejectUnauthorized: false,
    secureOptions: protocolOptions(s.server_tls_protocols, "server_tls_protocols"),
    ciphers: cipherList(s.server_tls_ciphers),
  };
  return { mode, options };
}
