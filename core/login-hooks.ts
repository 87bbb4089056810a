// Runs the login's bail hooks (startup, authenticate, authenticated) without tapable's promise when no tap needs one.
import type { AsyncSeriesBailHook } from "tapable";

/** A value or a promise of it: what runBail gives back (a promise only once a promise tap ran). */
export type MaybePromise<T> = T | Promise<T>;

interface TapLike {
  type: "sync" | "async" | "promise";
  fn: Function;
}

/**
 * Calls the hook's taps in order as tapable's AsyncSeriesBailHook.promise() does, with the same results: the first
 * tap to return (or resolve with) anything but undefined decides; a throw or a rejection fails the call. Where
 * tapable makes a promise per call and resolves every tap's result through it, this stays synchronous through the
 * sync taps (a login's startup hook has only those), so the caller awaits nothing when nothing is pending; from
 * the first promise tap on it is one async continuation. A hook with a callback-style tap, or an interceptor
 * watching calls (pgbun's own only wrap taps as they are registered), goes through tapable itself.
 */
export function runBail<T>(hook: AsyncSeriesBailHook<any, T | undefined>, arg: unknown): MaybePromise<T | undefined> {
  const taps = hook.taps as TapLike[];
  if (taps.length === 0) return undefined;
  if (!plain(hook, taps)) return hook.promise(arg);
  for (let i = 0; i < taps.length; i++) {
    const tap = taps[i]!;
    if (tap.type === "promise") return fromPromiseTap(taps, i, arg);
    const result = tap.fn(arg) as T | undefined;
    if (result !== undefined) return result;
  }
  return undefined;
}

/** No callback-style tap and no interceptor but at registration: tapable's call would add nothing to ours. */
function plain(hook: AsyncSeriesBailHook<any, any>, taps: TapLike[]): boolean {
  for (const t of taps) if (t.type === "async") return false;
  for (const i of hook.interceptors as Array<Record<string, unknown>>) {
    if (i.call !== undefined || i.tap !== undefined || i.loop !== undefined || i.error !== undefined || i.result !== undefined || i.done !== undefined) return false;
  }
  return true;
}

/** The taps from `from` (a promise tap) on. */
async function fromPromiseTap<T>(taps: TapLike[], from: number, arg: unknown): Promise<T | undefined> {
  for (let i = from; i < taps.length; i++) {
    const tap = taps[i]!;
    let result: T | undefined;
    if (tap.type === "promise") {
      const promise = tap.fn(arg) as Promise<T | undefined> | undefined;
      if (!promise || typeof promise.then !== "function") throw new Error(`Tap function (tapPromise) did not return promise (returned ${String(promise)})`);
      try {
        result = await promise;
      } catch (err) {
        throw err ? err : new Error(`Tap function (tapPromise) rejects "${String(err)}" value`);
      }
    } else result = tap.fn(arg) as T | undefined;
    if (result !== undefined) return result;
  }
  return undefined;
}

/** True when `v` must be awaited. */
export function isThenable<T>(v: MaybePromise<T>): v is Promise<T> {
  return v !== null && typeof v === "object" && typeof (v as { then?: unknown }).then === "function";
}
