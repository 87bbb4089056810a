// A plugin that provides capabilities and does nothing: it stands in for built-ins a measurement runs without.
import type { PgbunPlugin } from "../../plugin-sdk/index.ts";

/** `provides`: the capabilities of the built-ins it replaces (the loader then leaves those built-ins out). */
export default (opts: { provides?: string[] } = {}): PgbunPlugin => ({
  name: `stub-${(opts.provides ?? []).join("+") || "none"}`,
  provides: opts.provides ?? [],
  apply() {},
});
