// Unit: pgbun:auth's failed-login throttle (auth_failure_delay): a burst, then one answer per delay, queued; bounded memory.
import { expect, test } from "bun:test";
import { FAILURE_BURST, LoginThrottle } from "../../plugins/auth/login-throttle.ts";

test("the burst is answered at once, later failures wait one delay more each, and the bucket refills with time", () => {
  const t = new LoginThrottle();
  const waits = Array.from({ length: FAILURE_BURST + 3 }, () => t.failed("10.0.0.1", 1_000, 100));
  expect(waits).toEqual([0, 0, 0, 0, 0, 100, 200, 300]);
  // another address has its own bucket
  expect(t.failed("10.0.0.2", 1_000, 100)).toBe(0);
  // after the bucket has refilled (8 failures: full again at 1_000 + 800) the burst is there again
  expect(t.failed("10.0.0.1", 1_800, 100)).toBe(0);
  // a zero delay slows nothing and remembers nothing
  expect(t.failed("10.0.0.3", 1_000, 0)).toBe(0);
  expect(t.size).toBe(2);
});

test("memory stays bounded: the least recently failed address is forgotten first; full buckets are swept", () => {
  const t = new LoginThrottle(100);
  for (let i = 0; i < 10_000; i++) t.failed(`10.0.${i >> 8}.${i & 255}`, 1_000, 1_000);
  expect(t.size).toBe(100);
  t.sweep(1_000 + 999);
  expect(t.size).toBe(100);
  t.sweep(1_000 + 1_000);
  expect(t.size).toBe(0);
});
