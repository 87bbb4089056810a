// Unit tests of core/login-hooks.ts: runBail gives what tapable's AsyncSeriesBailHook.promise() gives, tap by tap, and is synchronous only while no tap is a promise tap.
import { describe, expect, test } from "bun:test";
import { AsyncSeriesBailHook } from "tapable";
import { isThenable, runBail } from "../../core/login-hooks.ts";

type Kind = "sync-pass" | "sync-bail" | "sync-throw" | "promise-pass" | "promise-bail" | "promise-reject" | "promise-late-bail";
const KINDS: Kind[] = ["sync-pass", "sync-bail", "sync-throw", "promise-pass", "promise-bail", "promise-reject", "promise-late-bail"];

/** A hook with one tap per kind (named by position), and the log of taps called. */
function hookOf(kinds: Kind[], withRegisterInterceptor = true) {
  const hook = new AsyncSeriesBailHook<[string], string | undefined>(["client"]);
  const called: string[] = [];
  // pgbun's own interceptor (core/plugin/loader.ts) only wraps taps as they register
  if (withRegisterInterceptor) hook.intercept({ register: (t) => t });
  kinds.forEach((k, i) => {
    const name = `${i}:${k}`;
    if (k.startsWith("sync")) {
      hook.tap(name, (c) => {
        called.push(name);
        if (k === "sync-throw") throw new Error(`thrown by ${name}`);
        return k === "sync-bail" ? `${c} refused by ${name}` : undefined;
      });
    } else {
      hook.tapPromise(name, async (c) => {
        called.push(name);
        await Promise.resolve();
        if (k === "promise-reject") throw new Error(`rejected by ${name}`);
        if (k === "promise-late-bail") await new Promise((r) => setTimeout(r, 1));
        return k === "promise-bail" || k === "promise-late-bail" ? `${c} refused by ${name}` : undefined;
      });
    }
  });
  return { hook, called };
}

async function outcome(run: () => unknown): Promise<{ ok?: unknown; err?: string }> {
  try {
    const r = run();
    return { ok: isThenable(r) ? await r : r };
  } catch (err) {
    return { err: (err as Error).message };
  }
}

/** Every sequence of up to three taps of the kinds above. */
function sequences(): Kind[][] {
  const out: Kind[][] = [[]];
  for (const a of KINDS) {
    out.push([a]);
    for (const b of KINDS) {
      out.push([a, b]);
      for (const c of KINDS) out.push([a, b, c]);
    }
  }
  return out;
}

describe("runBail", () => {
  test("gives the same result or error as tapable, calling the same taps in the same order, for every sequence of up to three taps", async () => {
    let compared = 0;
    for (const kinds of sequences()) {
      const a = hookOf(kinds);
      const b = hookOf(kinds);
      const ours = await outcome(() => runBail(a.hook, "C-1"));
      const theirs = await outcome(() => b.hook.promise("C-1"));
      expect({ kinds, ...ours, called: a.called }).toEqual({ kinds, ...theirs, called: b.called });
      compared++;
    }
    expect(compared).toBe(1 + 7 + 49 + 343);
  });

  test("is synchronous through sync taps and returns a promise from the first promise tap on", () => {
    expect(runBail(hookOf([]).hook, "c")).toBeUndefined();
    expect(runBail(hookOf(["sync-pass", "sync-pass"]).hook, "c")).toBeUndefined();
    expect(runBail(hookOf(["sync-pass", "sync-bail", "promise-bail"]).hook, "c")).toBe("c refused by 1:sync-bail");
    const pending = hookOf(["sync-pass", "promise-pass", "sync-bail"]);
    const r = runBail(pending.hook, "c");
    expect(isThenable(r)).toBe(true);
    // the promise tap was called at once (as tapable calls it), the sync tap behind it only once it resolved
    expect(pending.called).toEqual(["0:sync-pass", "1:promise-pass"]);
    return (r as Promise<string | undefined>).then((v) => {
      expect(v).toBe("c refused by 2:sync-bail");
      expect(pending.called).toEqual(["0:sync-pass", "1:promise-pass", "2:sync-bail"]);
    });
  });

  test("a tapPromise tap that returns no promise fails the call, as in tapable", async () => {
    const ours = new AsyncSeriesBailHook<[string], string | undefined>(["c"]);
    const theirs = new AsyncSeriesBailHook<[string], string | undefined>(["c"]);
    for (const h of [ours, theirs]) h.tapPromise("bad", (() => "no promise") as unknown as () => Promise<undefined>);
    const a = await outcome(() => runBail(ours, "c"));
    const b = await outcome(() => theirs.promise("c"));
    expect(a.err).toContain("did not return promise");
    expect(a).toEqual(b);
  });

  test("a hook with a callback-style tap or an interceptor watching calls goes through tapable (its interceptor sees the call)", async () => {
    const cb = new AsyncSeriesBailHook<[string], string | undefined>(["c"]);
    cb.tap("first", () => undefined);
    cb.tapAsync("callback", (c, done) => setTimeout(() => done(null, `${c} refused by callback`), 1));
    const r = runBail(cb, "c");
    expect(isThenable(r)).toBe(true);
    expect(await r).toBe("c refused by callback");

    const seen: string[] = [];
    const watched = hookOf(["sync-pass", "sync-pass"]).hook;
    watched.intercept({ call: (c) => void seen.push(`call ${c}`), tap: (t) => void seen.push(`tap ${t.name}`) });
    const w = runBail(watched, "c");
    expect(isThenable(w)).toBe(true); // tapable's own promise: its interceptors ran
    expect(await w).toBeUndefined();
    expect(seen).toEqual(["call c", "tap 0:sync-pass", "tap 1:sync-pass"]);
  });
});
