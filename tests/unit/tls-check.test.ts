// The TLS files a configuration names are checked when it loads (start-up, reload, `pgbun check`): an unreadable or
// invalid certificate, key or CA is a ConfigError naming the config file, the setting's key and the reason.
import { beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, loadConfig, withSetting } from "../../core/config/load.ts";
import { harnessTempDir } from "../harness/postgres.ts";
import { makeTestCerts, type TestCerts } from "../harness/tls.ts";

setDefaultTimeout(30_000);

let certs: TestCerts;
let other: TestCerts;
let dir: string;
beforeAll(async () => {
  certs = await makeTestCerts("check");
  other = await makeTestCerts("check-other");
  dir = await harnessTempDir("tls-check");
  writeFileSync(join(dir, "garbage.pem"), "not a certificate\n");
  writeFileSync(join(dir, "broken.crt"), "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
  mkdirSync(join(dir, "a-directory.pem"));
});

/** Writes a TOML config in `dir` with these [pgbun] settings and returns its path. */
function configFile(name: string, settings: Record<string, string>): string {
  const path = join(dir, `${name}.toml`);
  writeFileSync(path, `[pgbun]\n${Object.entries(settings).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join("\n")}\n`);
  return path;
}

const clientSide = () => ({ client_tls_sslmode: "require", client_tls_cert_file: certs.serverCert, client_tls_key_file: certs.serverKey, client_tls_ca_file: certs.caCert });
const serverSide = () => ({ server_tls_sslmode: "verify-ca", server_tls_cert_file: certs.clientCert, server_tls_key_file: certs.clientKey, server_tls_ca_file: certs.caCert });

async function problem(settings: Record<string, string>, env: Record<string, string> = {}): Promise<{ file: string; err: ConfigError }> {
  const file = configFile(`c${Math.random().toString(36).slice(2)}`, settings);
  try {
    await loadConfig({ configFile: file, env });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return { file, err: err as ConfigError };
  }
  throw new Error("expected a ConfigError");
}

describe("TLS files at load", () => {
  test("good files on both sides load", async () => {
    const c = await loadConfig({ configFile: configFile("good", { ...clientSide(), ...serverSide() }), env: {} });
    expect(c.settings.client_tls_sslmode).toBe("require");
  });

  const cases: Array<[string, Record<string, string>, string, RegExp]> = [
    ["a missing certificate", { client_tls_cert_file: "missing.crt" }, "client_tls_cert_file", /^cannot read missing\.crt: ENOENT/],
    ["a directory as key", { client_tls_key_file: "a-directory.pem" }, "client_tls_key_file", /^cannot read a-directory\.pem: EISDIR/],
    ["a file that is no certificate", { client_tls_cert_file: "garbage.pem" }, "client_tls_cert_file", /garbage\.pem holds no PEM certificate/],
    ["a certificate that does not parse", { client_tls_cert_file: "broken.crt" }, "client_tls_cert_file", /broken\.crt: certificate 1 cannot be parsed/],
    ["a certificate as key", { client_tls_key_file: "CERT" }, "client_tls_key_file", /holds no usable private key/],
    ["a key of another certificate", { client_tls_key_file: "OTHER_KEY" }, "client_tls_key_file", /does not belong to the certificate in client_tls_cert_file/],
    ["a CA file that is no certificate", { client_tls_ca_file: "garbage.pem" }, "client_tls_ca_file", /holds no PEM certificate/],
  ];
  for (const [what, change, key, reason] of cases) {
    test(`client side: ${what}`, async () => {
      const resolved = Object.fromEntries(Object.entries(change).map(([k, v]) => [k, v === "CERT" ? certs.serverCert : v === "OTHER_KEY" ? other.serverKey : v]));
      const { file, err } = await problem({ ...clientSide(), ...resolved });
      expect([err.file, err.key]).toEqual([file, `pgbun.${key}`]);
      expect(err.reason).toMatch(reason);
    });
  }

  test("server side: an unreadable CA, a key of another certificate; an env override is named as the source", async () => {
    const missing = await problem({ ...serverSide(), server_tls_ca_file: "nope/ca.crt" });
    expect([missing.err.file, missing.err.key]).toEqual([missing.file, "pgbun.server_tls_ca_file"]);
    expect(missing.err.reason).toMatch(/^cannot read nope\/ca\.crt: ENOENT/);
    const mismatch = await problem({ ...serverSide(), server_tls_key_file: other.clientKey });
    expect(mismatch.err.key).toBe("pgbun.server_tls_key_file");
    const env = await problem(serverSide(), { PGBUN_SERVER_TLS_CERT_FILE: join(dir, "garbage.pem") });
    expect([env.err.file, env.err.key]).toEqual([null, "env PGBUN_SERVER_TLS_CERT_FILE"]);
  });

  test("client_tls_sslmode disable does not read the client files (start-up does not either)", async () => {
    const c = await loadConfig({ configFile: configFile("disabled", { client_tls_sslmode: "disable", client_tls_cert_file: "missing.crt", client_tls_key_file: "missing.key" }), env: {} });
    expect(c.settings.client_tls_sslmode).toBe("disable");
  });

  test("the console's SET of a TLS file checks it too: 22023 naming the setting and the reason", async () => {
    const running = await loadConfig({ configFile: configFile("set", clientSide()), env: {} });
    const err = (() => {
      try {
        withSetting(running, "client_tls_cert_file", join(dir, "garbage.pem"));
      } catch (e) {
        return e as ConfigError;
      }
      throw new Error("expected a ConfigError");
    })();
    expect([err.key, err.code]).toEqual(["SET client_tls_cert_file", "22023"]);
    expect(err.reason).toMatch(/^client_tls_cert_file: .*garbage\.pem holds no PEM certificate/);
    expect(withSetting(running, "client_tls_cert_file", certs.serverCert).settings.client_tls_cert_file).toBe(certs.serverCert);
  });

  test("pgbun check reports the file, key and reason, and exits 1", () => {
    const file = configFile("cli", { ...clientSide(), client_tls_key_file: "missing.key" });
    const r = Bun.spawnSync([process.execPath, join(import.meta.dir, "../../bin/pgbun.ts"), "check", "-c", file], { stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH ?? "" } });
    expect(r.exitCode).toBe(1);
    expect(r.stderr.toString().trim()).toStartWith(`pgbun: ${file}: pgbun.client_tls_key_file: cannot read missing.key: ENOENT`);
  });
});
