// The TLS files the settings name, checked when a configuration is loaded: readable PEM that TLS can use.
import { createPrivateKey, X509Certificate, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { SettingName, Settings } from "./settings.ts";

/** A TLS file that cannot serve: which setting names it, and why. */
export class TlsFileProblem extends Error {
  constructor(
    readonly setting: SettingName,
    readonly reason: string,
  ) {
    super(`${setting}: ${reason}`);
  }
}

const CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * The first problem with the files the TLS settings name, or null. The files checked are the ones start-up
 * reads (core/net/tls-options.ts): the client side's only when client_tls_sslmode is not disable, the server
 * side's whenever they are set. Without this a certificate that is not one loads, and each TLS client fails.
 */
export function tlsFileProblem(s: Settings, dir: string): TlsFileProblem | null {
  const sides: Array<[SettingName, SettingName, SettingName]> = [];
  if (s.client_tls_sslmode !== "disable") sides.push(["client_tls_cert_file", "client_tls_key_file", "client_tls_ca_file"]);
  sides.push(["server_tls_cert_file", "server_tls_key_file", "server_tls_ca_file"]);
  for (const [certName, keyName, caName] of sides) {
    try {
      const cert = certificates(s, dir, certName)?.[0];
      const key = privateKey(s, dir, keyName);
      certificates(s, dir, caName);
      if (cert !== undefined && key !== null && !cert.checkPrivateKey(key)) {
        throw problem(keyName, `the key in ${s[keyName]} does not belong to the certificate in ${certName} (${s[certName]})`);
      }
    } catch (err) {
      if (err instanceof TlsFileProblem) return err;
      throw err;
    }
  }
  return null;
}

function read(s: Settings, dir: string, name: SettingName): Buffer | null {
  const file = s[name] as string;
  if (file === "") return null;
  try {
    return readFileSync(resolve(dir, file));
  } catch (err) {
    throw problem(name, `cannot read ${file}: ${message(err)}`);
  }
}

/** The certificates of a PEM file (a CA file may hold several), each parsed; null when the setting is empty. */
function certificates(s: Settings, dir: string, name: SettingName): X509Certificate[] | null {
  const pem = read(s, dir, name);
  if (pem === null) return null;
  const blocks = pem.toString("latin1").match(CERTIFICATE);
  if (blocks === null) throw problem(name, `${s[name]} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (err) {
      throw problem(name, `${s[name]}: certificate ${i + 1} cannot be parsed: ${message(err)}`);
    }
  });
}

function privateKey(s: Settings, dir: string, name: SettingName): KeyObject | null {
  const pem = read(s, dir, name);
  if (pem === null) return null;
  try {
    return createPrivateKey(pem);
  } catch (err) {
    throw problem(name, `${s[name]} holds no usable private key (an unencrypted PEM key is needed): ${message(err)}`);
  }
}

function problem(setting: SettingName, reason: string): TlsFileProblem {
  return new TlsFileProblem(setting, reason);
}
