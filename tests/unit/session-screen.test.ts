// The session-state plugin's text screening: never misses a statement that can change session state; and the verify
// mode's proof of harmlessness, which only a short list of statements that run no user code passes.
import { expect, test } from "bun:test";
import { provenHarmless } from "../../plugins/session-state/harmless.ts";
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

test("the two-letter table rejects no word: a random mix of word pieces screens exactly as a case-blind search of the words", () => {
  // pieces that share first letters and first two letters with the words (se/sE, de/di, le/li/lo, te/ta, ad/ac):
  // the byte table's fast rejection must never hide a word that starts right after a near miss
  const pieces = ["s", "S", "e", "E", "t", "T", "se", "sE", "li", "LI", "st", "en", "de", "di", "dE", "al", "lo", "ad", "ac", "te", "mp", "Mp", "pr", "ep", "are", "vis", "ory", "oad", "clare", "card", "llocate", "isten", "x", " ", ";", "\u00d3", "\u00e5", "\u0000"];
  const words = /set|listen|prepare|discard|deallocate|declare|load|temp|advisory/i;
  let seed = 14;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  let found = 0;
  for (let n = 0; n < 20_000; n++) {
    let text = "";
    for (let k = 1 + Math.floor(next() * 8); k > 0; k--) text += pieces[Math.floor(next() * pieces.length)]!;
    const expected = words.test(text);
    if (expected) found++;
    expect({ text, screened: screen(text) }).toEqual({ text, screened: expected });
    // the word's last byte at the range's end, with bytes after it that are outside the range
    const b = Buffer.from(text + "set", "latin1");
    expect({ text, cut: mayChangeSessionState(b, 0, text.length + 2) }).toEqual({ text, cut: words.test(text + "se") });
  }
  // both outcomes were exercised many times
  expect(found).toBeGreaterThan(500);
  expect(found).toBeLessThan(19_500);
});

test("bytes above ASCII never fold into letters", () => {
  // 0xD3 | 0x20 = 0xF3 and friends: Latin-1 letters must not be read as s/e/t
  expect(screen("\u00d3\u00c5\u00d4 x = 1")).toBe(false);
  expect(screen("\u00f3\u00e5\u00f4")).toBe(false);
});

// ---------------------------------------------------------------------------------------------------------------
// verify mode: the texts proven harmless (no state check after a transaction made only of them)

const proven = (sql: string, pad = "") => {
  const b = Buffer.from(pad + sql, "latin1");
  return provenHarmless(b, pad.length, b.length);
};

const HARMLESS = [
  "",
  "  \n\t",
  ";",
  "BEGIN",
  "begin isolation level serializable, read only, not deferrable",
  "START TRANSACTION ISOLATION LEVEL REPEATABLE READ",
  "COMMIT",
  "commit and chain",
  "END",
  "ROLLBACK",
  "ABORT",
  "SAVEPOINT \"a b\"",
  "ROLLBACK TO SAVEPOINT s1",
  "RELEASE SAVEPOINT s1",
  "SHOW search_path",
  "SHOW ALL",
  "show myapp.tenant",
  "SHOW \"TimeZone\"",
  "SELECT",
  "SELECT 1",
  "select 1 as one, 'x' AS \"X\", null, TRUE, false, 1.5, .5, 2e10, 3E-2",
  "SELECT 'it''s'",
  "/* a /* nested */ comment */ SELECT 1 -- trailing",
  "BEGIN; SELECT 1; COMMIT;",
  "SELECT 1 AS from",
  "SELECT '\u00e9' AS \"\u00e9\"",
];

const UNPROVEN = [
  // pgbench's TPC-B statements: tables may have triggers, views, policies, defaults
  "SELECT abalance FROM pgbench_accounts WHERE aid = $1",
  "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2",
  "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP)",
  "SELECT f()",
  "select now()",
  "SELECT become_hidden()",
  "DO $$ BEGIN PERFORM 1; END $$",
  "CALL p()",
  "SELECT 1 FROM t",
  "SELECT 1 x",
  "SELECT 1from t",
  "SELECT $1",
  "SELECT 1::int",
  "SELECT -1",
  "SELECT 1 + 1",
  "SELECT (1)",
  "SELECT current_user",
  "SELECT E'x'",
  "SELECT 'a\\' , f() --'",
  "SELECT 'unterminated",
  "SELECT 1 /* unterminated",
  "SELECT 'a' 'b'",
  "SELECT 1,",
  "SELECT 1 AS",
  "SELECT 1 INTO TEMP t",
  "SELECT * FROM v",
  "TABLE t",
  "VALUES (1)",
  "EXPLAIN SELECT 1",
  "SET search_path = app",
  "LISTEN ch",
  "COMMIT PREPARED 'x'",
  "BEGIN; UPDATE t SET a = 1; COMMIT",
  "SELECT 1; SELECT f()",
  "SHOW x; DISCARD ALL",
  "(SELECT 1)",
  "SELECT 1\u000b",
  "SELECT 1 AS \u00e9",
];

test("verify mode: transaction control, SHOW and SELECT of constants are proven harmless, in any letter case", () => {
  for (const sql of HARMLESS) {
    expect([sql, proven(sql)]).toEqual([sql, true]);
    expect([sql, proven(sql.toUpperCase())]).toEqual([sql, true]);
    expect([sql, proven(sql, "xx")]).toEqual([sql, true]);
  }
});

test("verify mode: anything that touches a table, calls a function, or is not understood is not proven harmless", () => {
  for (const sql of UNPROVEN) {
    expect([sql, proven(sql)]).toEqual([sql, false]);
    expect([sql, proven(sql.toLowerCase())]).toEqual([sql, false]);
  }
});

test("verify mode: only the given range is judged", () => {
  const b = Buffer.from("SELECT f(); SELECT 1", "latin1");
  expect(provenHarmless(b, 12, b.length)).toBe(true);
  expect(provenHarmless(b, 0, b.length)).toBe(false);
  expect(provenHarmless(b, 0, 6)).toBe(true); // "SELECT" alone
});
