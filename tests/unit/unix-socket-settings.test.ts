// unix_socket_mode is read as PgBouncer reads it (strtol base 0): "0770" is octal, a bare number is taken as is.
import { expect, test } from "bun:test";
import { validateConfig } from "../../core/config/load.ts";

const mode = (v: unknown) => validateConfig({ pgbun: { unix_socket_mode: v } }, null, "/").settings.unix_socket_mode;

test('unix_socket_mode: "0770" and "0o770" are octal, 504 and "504" decimal; beyond 0777 is refused', () => {
  expect(mode("0770")).toBe(0o770);
  expect(mode("0o770")).toBe(0o770);
  expect(mode("0")).toBe(0);
  expect(mode(504)).toBe(0o770);
  expect(mode("504")).toBe(0o770);
  // "777" is decimal 777 (0o1411) as in PgBouncer: refused rather than taken for 0777
  expect(() => mode("777")).toThrow(/unix_socket_mode/);
  expect(() => mode("0778")).toThrow(/unix_socket_mode/);
});
