// The session-state plugin's statement marks: a statement whose text may change session state stays marked for each
// later Bind of it, by name, until it is closed or deallocated (the unnamed one until a Parse replaces it or a check);
// in verify mode, the unnamed statement of a harmless text is known harmless just as long.
import { expect, test } from "bun:test";
import { StatementMarks } from "../../plugins/session-state/statements.ts";

/** A Bind body's statement-name range, as the plugin finds it: the bytes of `name` at an offset. */
function bindOf(marks: StatementMarks, name: string): boolean {
  const b = Buffer.from(`xx${name}\u0000`, "latin1");
  return marks.bindMayChange(b, 2, 2 + name.length);
}

test("a named statement parsed with a changing text is marked at every Bind of it, others never", () => {
  const m = new StatementMarks();
  expect(m.anyChanging).toBe(false);
  m.parsed("listen_ch", true);
  m.parsed("plain", false);
  expect(m.anyChanging).toBe(true);
  for (let i = 0; i < 3; i++) {
    expect(bindOf(m, "listen_ch")).toBe(true);
    expect(bindOf(m, "plain")).toBe(false);
    expect(bindOf(m, "")).toBe(false);
  }
});

test("a Parse of a marked name with another text keeps the mark (the name is in use: that Parse fails)", () => {
  const m = new StatementMarks();
  m.parsed("s1", true);
  m.parsed("s1", false);
  expect(bindOf(m, "s1")).toBe(true);
});

test("Close 'S' forgets one name, DISCARD ALL / DEALLOCATE ALL every name; nothing is kept once none is marked", () => {
  const m = new StatementMarks();
  m.parsed("a", true);
  m.parsed("b", true);
  m.closed("a");
  expect(bindOf(m, "a")).toBe(false);
  expect(bindOf(m, "b")).toBe(true);
  m.closed("b");
  expect(m.changing).toBeNull();
  expect(m.anyChanging).toBe(false);
  m.parsed("c", true);
  m.deallocatedAll();
  expect(bindOf(m, "c")).toBe(false);
  expect(m.changing).toBeNull();
});

test("the unnamed statement: marked by a changing Parse, unmarked by the next Parse or by the state check (which drops it)", () => {
  const m = new StatementMarks();
  m.parsed("", true);
  expect(bindOf(m, "")).toBe(true);
  expect(bindOf(m, "named")).toBe(false);
  m.parsed("", false);
  expect(bindOf(m, "")).toBe(false);
  m.parsed("", true);
  m.checkStarted();
  expect(bindOf(m, "")).toBe(false);
  expect(m.anyChanging).toBe(false);
});

test("names are compared byte for byte (Latin-1), whatever their encoding", () => {
  const m = new StatementMarks();
  const name = Buffer.from("stmt_é", "utf8").toString("latin1");
  m.parsed(name, true);
  const b = Buffer.concat([Buffer.from("P"), Buffer.from("stmt_é", "utf8"), Buffer.from([0])]);
  expect(m.bindMayChange(b, 1, b.length - 1)).toBe(true);
  expect(m.bindMayChange(b, 1, b.length - 2)).toBe(false);
});

test("verify mode: the unnamed statement is harmless only after a Parse of a harmless text, until the next Parse or the check", () => {
  const m = new StatementMarks();
  expect(m.unnamedHarmless).toBe(false);
  m.parsed("", false, true);
  expect(m.unnamedHarmless).toBe(true);
  m.parsed("", false, false);
  expect(m.unnamedHarmless).toBe(false);
  m.parsed("", false, true);
  m.checkStarted();
  expect(m.unnamedHarmless).toBe(false);
  // a text cannot be both: changing wins
  m.parsed("", true, true);
  expect([m.unnamedHarmless, m.unnamedChanging]).toEqual([false, true]);
});
