// Hooks the core calls per message and per transaction, compiled: the taps called directly, one try/catch naming the plugin.
import type { MessageHook } from "../../plugin-sdk/hooks.ts";
import type { MessageContext, MessageResult } from "../../plugin-sdk/context.ts";
import { PluginFault } from "./fault.ts";

/** Calls the taps of a message type some plugin tapped (the caller checked that one is), in order, with bail. */
export type Dispatch = (type: number, ctx: MessageContext) => MessageResult;

/** A tap as attributeTaps (loader.ts) records it: the plugin's own function and the plugin's name beside tapable's. */
interface RecordedTap {
  raw?: (ctx: MessageContext) => MessageResult;
  plugin?: string;
}

let generation = 0;

/**
 * Taps the generated code may call directly: every one recorded with its own function and plugin, and no
 * interceptor but pgbun's own (one that watches calls, or wraps taps after ours, must see them through tapable).
 */
function direct(hook: { taps: unknown[]; interceptors: unknown[] }): boolean {
  return hook.interceptors.length <= 1 && (hook.taps as RecordedTap[]).every((tap) => typeof tap.raw === "function" && typeof tap.plugin === "string");
}

/**
 * tapable runs a message hook as its compiled `call`, which calls each tap's fault-attributing wrapper (a frame with
 * a try/catch, which the JIT does not inline), which calls the tap: three frames per tap and message, through call
 * sites shared by every type. This builds, per tapped type, one function that calls the taps' own functions in
 * tapable's order with its bail semantics, inside a single try/catch that names the plugin whose tap threw: the taps
 * can be inlined into it. A switch gives each type its own call site. Where a hook has interceptors of someone else's
 * or its taps changed since (a late tap), the type goes through tapable's own `call`, so nothing is ever skipped;
 * the tables are built again at each reload (core/pgbun.ts compileHooks). `calls` picks the taps called directly
 * (all by default): the pooled clients' dispatcher leaves out `virtualClients` taps; tapable's own `call`, the
 * fallback, still reaches them, and they pass a pooled client's message by themselves (hooks.ts forVirtualClients).
 */
export function dispatcherOf(hooks: readonly (MessageHook | undefined)[], faulted?: (plugin: string) => void, calls?: (tap: unknown) => boolean): Dispatch {
  const args: unknown[] = [];
  const names: string[] = [];
  const arg = (name: string, value: unknown): string => {
    names.push(name);
    args.push(value);
    return name;
  };
  const fault = arg("fault", (plugin: string, err: unknown) => PluginFault.of(plugin, err, faulted));
  const parts: string[] = [];
  const cases: string[] = [];
  for (let t = 0; t < hooks.length; t++) {
    const hook = hooks[t];
    if (hook === undefined) continue;
    const h = arg(`h${t}`, hook);
    const recorded = hook as unknown as { taps: unknown[]; interceptors: unknown[] };
    if (!direct(recorded)) {
      cases.push(`    case ${t}: return ${h}.call(ctx);`);
      continue;
    }
    const taps = recorded.taps as Required<RecordedTap>[];
    // `calls` leaves out taps that do not concern these connections (the count below still checks them all)
    const called = taps.flatMap((tap, i) => {
      if (calls !== undefined && !calls(tap)) return [];
      const f = arg(`f${t}_${i}`, tap.raw);
      const p = arg(`p${t}_${i}`, tap.plugin);
      return [`      who = ${p}; r = ${f}(ctx); if (r !== undefined) return r;`];
    });
    parts.push(`  function d${t}(ctx) {
    if (${h}.taps.length !== ${taps.length}) return ${h}.call(ctx);
    let who = "", r;
    try {
${called.join("\n")}
      return undefined;
    } catch (err) {
      throw ${fault}(who, err);
    }
  }`);
    cases.push(`    case ${t}: return d${t}(ctx);`);
  }
  // a comment of its own per build: a source the engine has seen before would share its code and call sites
  const source = `/* pgbun dispatch ${++generation} */
${parts.join("\n")}
  return function dispatch(type, ctx) {
    switch (type) {
${cases.join("\n")}
    }
    return undefined;
  };`;
  return new Function(...names, source)(...args) as Dispatch;
}

/** A connection hook's call as the core makes it (at most three arguments). */
export type Caller = (a?: unknown, b?: unknown, c?: unknown) => unknown;

/**
 * The same for a connection hook the core calls per transaction (needServer, serverLinked, serverReleased): its
 * taps called directly, in order, with bail for a bail hook, one try/catch naming the plugin. A hook with someone
 * else's interceptors is called through tapable; one tapped since (pgbun:admin taps late, at the first PAUSE) goes
 * through tapable this time and `stale` is told, to build the callers again.
 */
export function callerOf(hook: { taps: unknown[]; interceptors: unknown[]; call: Caller }, bail: boolean, stale: () => void, faulted?: (plugin: string) => void): Caller {
  if (!direct(hook)) return (a, b, c) => hook.call(a, b, c);
  const taps = hook.taps as Required<RecordedTap>[];
  const fault = (plugin: string, err: unknown) => PluginFault.of(plugin, err, faulted);
  const names = ["h", "stale", "fault"];
  const args: unknown[] = [hook, stale, fault];
  const calls = taps.map((tap, i) => {
    names.push(`f${i}`, `p${i}`);
    args.push(tap.raw, tap.plugin);
    return bail ? `      who = p${i}; r = f${i}(a, b, c); if (r !== undefined) return r;` : `      who = p${i}; f${i}(a, b, c);`;
  });
  const source = `/* pgbun caller ${++generation} */
  return function call(a, b, c) {
    if (h.taps.length !== ${taps.length}) {
      stale();
      return h.call(a, b, c);
    }
    let who = "", r;
    try {
${calls.join("\n")}
    } catch (err) {
      throw fault(who, err);
    }
    return undefined;
  };`;
  return new Function(...names, source)(...args) as Caller;
}
