// Unit tests of the relay's generated message-hook dispatcher: tapable's order and bail, fault attribution, late taps.
import { describe, expect, test } from "bun:test";
import { createHooks } from "../../plugin-sdk/hooks.ts";
import { attributeTaps } from "../../core/plugin/loader.ts";
import { callerOf, dispatcherOf } from "../../core/plugin/dispatch.ts";
import { PluginFault } from "../../core/plugin/fault.ts";
import type { MessageContext, MessageResult } from "../../plugin-sdk/context.ts";

const Q = 0x51;
const Z = 0x5a;

function setup() {
  const hooks = createHooks();
  let current: string | null = null;
  const faults: string[] = [];
  attributeTaps(hooks, () => current, undefined, undefined, (p) => faults.push(p));
  const tap = (plugin: string, type: number, fn: (ctx: MessageContext) => MessageResult, stage?: number, extra: object = {}) => {
    current = plugin;
    hooks.clientMessage.for(type).tap({ name: plugin, stage, ...extra }, fn);
    current = null;
  };
  const table = () => Array.from({ length: 256 }, (_, t) => {
    const h = hooks.clientMessage.get(t);
    return h && h.taps.length > 0 ? h : undefined;
  });
  return { hooks, tap, table, faults };
}

const ctx = {} as MessageContext;

describe("message dispatcher", () => {
  test("taps run in tapable's order (stages), the first result other than undefined ends the call", () => {
    const { tap, table } = setup();
    const seen: string[] = [];
    tap("b", Q, () => void seen.push("b"), 10);
    tap("a", Q, () => void seen.push("a"), -10);
    tap("c", Q, () => (seen.push("c"), 7 as unknown as MessageResult), 20);
    tap("d", Q, () => void seen.push("d"), 30);
    const d = dispatcherOf(table());
    expect(d(Q, ctx)).toBe(7 as unknown as MessageResult);
    expect(seen).toEqual(["a", "b", "c"]);
    expect(d(Z, ctx)).toBeUndefined(); // an untapped type: nothing runs
  });

  test("a tap that throws is reported by its plugin's name, once counted; a PluginFault passes as it is", () => {
    const { tap, table, faults } = setup();
    tap("fine", Q, () => undefined);
    tap("broken", Q, () => {
      throw new Error("boom");
    });
    const inner = new PluginFault("inner", new Error("deep"));
    tap("relay", Z, () => {
      throw inner;
    });
    const d = dispatcherOf(table(), (p) => faults.push(p));
    let caught: unknown;
    try {
      d(Q, ctx);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(PluginFault);
    expect((caught as PluginFault).plugin).toBe("broken");
    expect((caught as PluginFault).reason).toBe("boom");
    expect(faults).toEqual(["broken"]);
    expect(() => d(Z, ctx)).toThrow(inner);
    expect(faults).toEqual(["broken"]);
  });

  test("a tap made after the dispatcher was built still runs (through tapable) until it is built again", () => {
    const { tap, table } = setup();
    const seen: string[] = [];
    tap("first", Q, () => void seen.push("first"));
    const d = dispatcherOf(table());
    tap("late", Q, () => void seen.push("late"));
    d(Q, ctx);
    expect(seen).toEqual(["first", "late"]);
    seen.length = 0;
    dispatcherOf(table())(Q, ctx);
    expect(seen).toEqual(["first", "late"]);
  });

  test("`calls` leaves taps out of the direct calls (a pooled client's dispatcher and virtualClients taps); order and bail hold for the rest", () => {
    const { tap, table } = setup();
    const seen: string[] = [];
    tap("console", Q, () => (seen.push("console"), 1 as unknown as MessageResult), -10, { virtualClients: true });
    tap("pooled", Q, () => void seen.push("pooled"));
    const pooledOnly = (tap: unknown) => (tap as { virtualClients?: boolean }).virtualClients !== true;
    expect(dispatcherOf(table(), undefined, pooledOnly)(Q, ctx)).toBeUndefined();
    expect(seen).toEqual(["pooled"]);
    seen.length = 0;
    // without the filter (a virtual client's dispatcher) every tap runs, and the first answer ends the call
    expect(dispatcherOf(table())(Q, ctx)).toBe(1 as unknown as MessageResult);
    expect(seen).toEqual(["console"]);
  });

  test("a hook someone else intercepts goes through tapable's call, interceptors included", () => {
    const { hooks, tap, table } = setup();
    const calls: string[] = [];
    tap("p", Q, () => void calls.push("tap"));
    hooks.clientMessage.for(Q).intercept({ call: () => void calls.push("interceptor") });
    dispatcherOf(table())(Q, ctx);
    expect(calls).toEqual(["interceptor", "tap"]);
  });
});

describe("connection hook callers", () => {
  function hooksWith() {
    const hooks = createHooks();
    let current: string | null = null;
    attributeTaps(hooks, () => current);
    const as = <T>(plugin: string, f: () => T): T => {
      current = plugin;
      try {
        return f();
      } finally {
        current = null;
      }
    };
    return { hooks, as };
  }

  test("a bail hook ends at the first answer; a sync hook runs every tap; arguments pass as given", () => {
    const { hooks, as } = hooksWith();
    const seen: unknown[] = [];
    as("a", () => hooks.serverReleased.tap("a", (s, c, r) => void seen.push(["a", s, c, r])));
    as("b", () => hooks.serverReleased.tap("b", () => true));
    as("c", () => hooks.serverReleased.tap("c", () => void seen.push("c")));
    const call = callerOf(hooks.serverReleased as never, true, () => {});
    expect(call("S", "C", "transaction")).toBe(true);
    expect(seen).toEqual([["a", "S", "C", "transaction"]]);
    as("x", () => hooks.serverLinked.tap("x", () => void seen.push("x")));
    as("y", () => hooks.serverLinked.tap("y", () => void seen.push("y")));
    expect(callerOf(hooks.serverLinked as never, false, () => {})("C", "S")).toBeUndefined();
    expect(seen.slice(1)).toEqual(["x", "y"]);
  });

  test("a fault names its plugin; a late tap runs through tapable and the caller is told it is stale", () => {
    const { hooks, as } = hooksWith();
    as("pool", () => hooks.needServer.tap("pool", () => undefined));
    let stale = 0;
    const faults: string[] = [];
    const call = callerOf(hooks.needServer as never, true, () => stale++, (p) => faults.push(p));
    expect(call("C")).toBeUndefined();
    as("admin", () => hooks.needServer.tap({ name: "admin", stage: -10 }, () => null));
    expect(call("C")).toBeNull(); // the late tap (before the pool's) answered
    expect(stale).toBe(1);
    as("thrower", () => hooks.needServer.tap({ name: "thrower", stage: -20 }, () => {
      throw new Error("no");
    }));
    const again = callerOf(hooks.needServer as never, true, () => {}, (p) => faults.push(p));
    expect(() => again("C")).toThrow(/plugin "thrower" failed: no/);
    expect(faults).toEqual(["thrower"]);
  });
});
