// The session-state plugin's byte screening: never misses a statement that can change session state.
import { expect, test } from "bun:test";
import { mayChangeSessionState } from "../../plugins/session-state/screen.ts";

const screen = (sql: string, pad = "") => {
  const b = Buffer.from(pad + sql, "latin1");
  return mayChangeSessionState(b, pad.length, b.length);
};

const CHANGING = [
  "SET search_path = app",
  "set local statement_timeout = 5",
  "  ReSeT ALL",
  "select 1; SET TimeZone='UTC'",
  "SELECT set_config('app.user', '7', false)",
  "LISTEN jobs",
  "unlisten *",
  "PREPARE p AS SELECT 1",
  "DISCARD ALL",
  "DEALLOCATE p",
  "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
  "LOAD 'auto_explain'",
  "CREATE TEMP TABLE t (a int)",
  "create global temporary table t (a int)",
  "SELECT 1 INTO TEMP t",
  "SELECT pg_advisory_lock(1)",
  "select PG_TRY_ADVISORY_LOCK_SHARED(1)",
];

const PLAIN = [
  "SELECT abalance FROM pgbench_accounts WHERE aid = $1",
  "UPDATE pgbench_branches SET bbalance = bbalance + 1 WHERE bid = 2".replace("SET", "SE\u0000T"),
  "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 2, 3, 4, CURRENT_TIMESTAMP)",
  "BEGIN",
  "COMMIT",
  "select now()",
];

test("every statement that can change session state passes the screen, in any letter case", () => {
  for (const sql of CHANGING) {
    expect([sql, screen(sql)]).toEqual([sql, true]);
    expect([sql, screen(sql.toUpperCase())]).toEqual([sql, true]);
    expect([sql, screen(sql.toLowerCase(), "xx")]).toEqual([sql, true]);
  }
});

test("ordinary queries are screened out without decoding", () => {
  for (const sql of PLAIN) expect([sql, screen(sql)]).toEqual([sql, false]);
});

test("the screen looks only inside its range and at words that end before it", () => {
  const b = Buffer.from("SET x; SELECT 1 -- LISTEN", "latin1");
  expect(mayChangeSessionState(b, 7, 16)).toBe(false);
  expect(mayChangeSessionState(b, 0, 3)).toBe(true);
  expect(mayChangeSessionState(b, 0, 2)).toBe(false);
  expect(mayChangeSessionState(b, 7, b.length)).toBe(true);
});

test("bytes above ASCII never fold into letters", () => {
  // 0xD3 | 0x20 = 0xF3 and friends: Latin-1 letters must not be read as s/e/t
  expect(screen("\u00d3\u00c5\u00d4 x = 1")).toBe(false);
  expect(screen("\u00f3\u00e5\u00f4")).toBe(false);
});
