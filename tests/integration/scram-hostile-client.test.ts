// Integration: hostile SCRAM messages from a client (CVE-2026-6664 class) get from pgbun the SQLSTATE PostgreSQL itself
// sends for the same bytes: each script runs once against PostgreSQL directly and once against pgbun (auth_file holding
// the role's own pg_authid secret), and the first ErrorResponse's code must agree. No crash; pgbun serves a client next.
import { beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { afterAll } from "bun:test";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pgConnect, usePostgres, withPgbun, type Endpoint } from "../harness/fixtures.ts";
import { errorFields, msg, WireClient, type BackendMessage } from "../harness/wire.ts";

setDefaultTimeout(60_000);

const pg = usePostgres();
const dir = mkdtempSync(join(tmpdir(), "pgbun-scram-hostile-"));
const authFile = join(dir, "userlist.txt");
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const ROLE = "hostile_scram";
const PW = "hostile-pw";

beforeAll(async () => {
  await pg.psql(`SET password_encryption = 'scram-sha-256'; CREATE ROLE ${ROLE} LOGIN PASSWORD '${PW}'`);
  writeFileSync(authFile, `"${ROLE}" "${await pg.psql(`SELECT rolpassword FROM pg_authid WHERE rolname = '${ROLE}'`)}"\n`);
});

function p(body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head[0] = 0x70;
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

/** SASLInitialResponse: mechanism, then the initial response with its length. */
function initial(data: string, mechanism = "SCRAM-SHA-256"): Buffer {
  const d = Buffer.from(data);
  const len = Buffer.alloc(4);
  len.writeInt32BE(d.length);
  return p(Buffer.concat([Buffer.from(mechanism + "\0"), len, d]));
}

const response = (data: string) => p(Buffer.from(data));
const PROOF32 = Buffer.alloc(32, 7).toString("base64");

/** A script: the initial response's data, then (given the server's nonce) the client-final-message, if any. */
interface Script {
  name: string;
  first: string | Buffer;
  mechanism?: string;
  final?: (nonce: string) => string;
}

const SCRIPTS: Script[] = [
  { name: "garbage client-first", first: "garbage" },
  { name: "empty client-first", first: "" },
  { name: "unknown channel-binding flag", first: "x,,n=,r=abcdef" },
  { name: "channel binding asked for without TLS", first: "p=tls-server-end-point,,n=,r=abcdef" },
  { name: "SCRAM-SHA-256-PLUS without TLS", first: "p=tls-server-end-point,,n=,r=abcdef", mechanism: "SCRAM-SHA-256-PLUS" },
  { name: "unknown mechanism", first: "n,,n=,r=abcdef", mechanism: "SCRAM-SHA-1" },
  { name: "an authzid", first: "n,a=postgres,n=,r=abcdef" },
  { name: "attributes in the wrong order", first: "n,,r=abcdef,n=" },
  { name: "a mandatory extension", first: "n,,m=ext,n=,r=abcdef" },
  { name: "an extension after the nonce (ignored), then a wrong proof", first: "n,,n=,r=abcdef,x=1", final: (n) => `c=biws,r=${n},p=${PROOF32}` },
  { name: "a client-first-message with a NUL", first: "n,,n=,r=abc\u0000def" },
  { name: "a nonce with a comma-free non-printable byte", first: "n,,n=,r=abc\u0001def" },
  { name: "an empty nonce (PostgreSQL goes on: its own nonce is random), then a wrong proof", first: "n,,n=,r=", final: (n) => `c=biws,r=${n},p=${PROOF32}` },
  { name: "a client-final-message first", first: `c=biws,r=abcdef,p=${PROOF32}` },
  { name: "a nonce not extending the server's", first: "n,,n=,r=abcdef", final: () => `c=biws,r=abcdefXYZ,p=${PROOF32}` },
  { name: "the client's nonce alone", first: "n,,n=,r=abcdef", final: () => `c=biws,r=abcdef,p=${PROOF32}` },
  { name: "a wrong channel-binding attribute", first: "n,,n=,r=abcdef", final: (n) => `c=eSws,r=${n},p=${PROOF32}` },
  { name: "the flag y, then c= of n", first: "y,,n=,r=abcdef", final: (n) => `c=biws,r=${n},p=${PROOF32}` },
  { name: "a proof that is not base64", first: "n,,n=,r=abcdef", final: (n) => `c=biws,r=${n},p=!!!!` },
  { name: "a proof of 3 bytes", first: "n,,n=,r=abcdef", final: (n) => `c=biws,r=${n},p=AAAA` },
  { name: "attributes of client-final in the wrong order", first: "n,,n=,r=abcdef", final: (n) => `r=${n},c=biws,p=${PROOF32}` },
  { name: "no proof", first: "n,,n=,r=abcdef", final: (n) => `c=biws,r=${n}` },
  { name: "a wrong proof of the right size", first: "n,,n=,r=abcdef", final: (n) => `c=biws,r=${n},p=${PROOF32}` },
  { name: "an extension before the proof, and a wrong proof", first: "n,,n=,r=abcdef", final: (n) => `c=biws,r=${n},x=1,p=${PROOF32}` },
];

/** Runs `script` against `to`: the first ErrorResponse's SQLSTATE, or what happened instead. */
async function run(to: Endpoint, script: Script): Promise<string> {
  const c = await WireClient.connect({ host: to.host, port: to.port });
  try {
    c.send(msg.startup({ user: ROLE, database: "app" }));
    await c.readUntil((m) => m.type === "R");
    c.send(initial(script.first.toString(), script.mechanism));
    const next = await c.readUntil((m) => m.type === "R" || m.type === "E", 10_000);
    let last: BackendMessage = next[next.length - 1]!;
    if (last.type === "R" && script.final) {
      const nonce = /r=([^,]*)/.exec(last.body.subarray(4).toString())![1]!;
      c.send(response(script.final(nonce)));
      const got = await c.readUntil((m) => m.type === "R" || m.type === "E", 10_000);
      last = got[got.length - 1]!;
    }
    return last.type === "E" ? errorFields(last).C! : `no error (${last.type})`;
  } catch (err) {
    return `no error: ${(err as Error).message.slice(0, 100)}`;
  } finally {
    c.destroy();
  }
}

test("each hostile SCRAM script gets from pgbun the SQLSTATE PostgreSQL sends, and pgbun goes on", async () => {
  const config = { pgbun: { auth_type: "scram-sha-256", auth_file: authFile }, databases: { "*": { host: pg.host, port: pg.port } } };
  await withPgbun(pg, config, async (f) => {
    const differences: string[] = [];
    for (const script of SCRIPTS) {
      const [fromPostgres, fromPgbun] = [await run(pg, script), await run(f.pb, script)];
      if (!/^(08P01|28P01|0A000)$/.test(fromPostgres)) differences.push(`${script.name}: PostgreSQL accepts it (${fromPostgres})`); // hostile to PostgreSQL too
      if (fromPgbun !== fromPostgres) differences.push(`${script.name}: PostgreSQL ${fromPostgres}, pgbun ${fromPgbun}`);
    }
    expect(differences).toEqual([]);
    // and the role logs in through pgbun as before (its server login with the keys of this proof)
    const c = await pgConnect(f.pb, { user: ROLE, password: PW });
    await c.query("SELECT 1");
    await c.end();
    expect(f.pb.logs()).not.toMatch(/TypeError|RangeError|failed during login/);
  });
});
