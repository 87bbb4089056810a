// A plugin that taps Query and ReadyForQuery and does nothing: ten of them measure the plugin pipeline's cost.
import type { PgbunPlugin } from "../../plugin-sdk/index.ts";

export default (opts: { id?: number | string } = {}): PgbunPlugin => ({
  name: `noop-${opts.id ?? 0}`,
  apply(api) {
    api.onClientMessage("Query", () => undefined);
    api.onServerMessage("ReadyForQuery", () => undefined);
  },
});
