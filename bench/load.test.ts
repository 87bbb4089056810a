// The --wait-quiet decision: when a cell starts, when the wait reads the load again, when it gives up and says so.
import { describe, expect, test } from "bun:test";
import { isQuiet, notQuietMessage, QUIET_POLL_MS, quietStep, waitForQuiet, type LoadSample } from "./load.ts";

const s = (load1: number, othersRunnable = 0): LoadSample => ({ load1, othersRunnable });

describe("quiet machine", () => {
  test("quiet needs the 1-minute load below 1 and no other runnable work", () => {
    expect(isQuiet(s(0.5))).toBe(true);
    expect(isQuiet(s(0.99, 0.2))).toBe(true);
    expect(isQuiet(s(1))).toBe(false);
    expect(isQuiet(s(0.3, 0.4))).toBe(false); // other work running right now, though the average is low
  });

  test("a loaded machine is waited for until the limit, then the cell starts and says so", () => {
    expect(quietStep(s(0.4), 0, 10_000)).toBe("quiet");
    expect(quietStep(s(2.5), 0, 10_000)).toBe("wait");
    expect(quietStep(s(2.5), 10_000 - QUIET_POLL_MS, 10_000)).toBe("wait");
    expect(quietStep(s(2.5), 10_000 - QUIET_POLL_MS + 1, 10_000)).toBe("gave-up");
    expect(quietStep(s(2.5), 0, 0)).toBe("gave-up");
  });

  test("waitForQuiet reads again while loaded and stops at the first quiet sample", async () => {
    const samples = [s(3), s(1.4), s(0.8, 1), s(0.7)];
    const slept: number[] = [];
    const w = await waitForQuiet(60_000, async () => samples.shift()!, async (ms) => void slept.push(ms));
    expect(w).toEqual({ quiet: true, waitedMs: 3 * QUIET_POLL_MS, last: s(0.7) });
    expect(slept).toEqual([QUIET_POLL_MS, QUIET_POLL_MS, QUIET_POLL_MS]);
  });

  test("a machine that never quiets gives up at the limit with the last sample, loudly", async () => {
    let reads = 0;
    const w = await waitForQuiet(3 * QUIET_POLL_MS, async () => (reads++, s(4.2, 2)), async () => undefined);
    expect(w.quiet).toBe(false);
    expect(w.waitedMs).toBe(3 * QUIET_POLL_MS);
    expect(reads).toBe(4);
    expect(notQuietMessage("simple, 10 clients: pgbun", w)).toMatch(/^NOT QUIET: simple, 10 clients: pgbun started after waiting 6 s with the 1-minute load at 4\.20 .* 2\.0 runnable/);
  });
});
