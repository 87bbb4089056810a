// The session_state setting: "verify" is selectable from a config file; an unknown value stops start-up naming the
// file, the key and the values allowed.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, loadConfig } from "../../core/config/load.ts";

const dir = mkdtempSync(join(tmpdir(), "pgbun-session-state-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function configFile(name: string, text: string): string {
  writeFileSync(join(dir, name), text);
  return name;
}

test('session_state = "verify" loads from TOML, any letter case', async () => {
  for (const value of ["verify", "Verify"]) {
    const file = configFile("verify.toml", `[pgbun]\npool_mode = "transaction"\nsession_state = "${value}"\n`);
    const c = await loadConfig({ configFile: file, cwd: dir, env: {} });
    expect(c.settings.session_state).toBe("verify");
  }
});

test("an unknown session_state value is refused with the file, the key and the values allowed", async () => {
  const file = configFile("typo.toml", `[pgbun]\nsession_state = "verfy"\n`);
  let err: unknown;
  try {
    await loadConfig({ configFile: file, cwd: dir, env: {} });
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ConfigError);
  const e = err as ConfigError;
  expect(e.file).toBe(join(dir, "typo.toml"));
  expect(e.key).toBe("pgbun.session_state");
  expect(e.reason).toBe('must be one of pin, verify, error, ignore, got "verfy"');
});
