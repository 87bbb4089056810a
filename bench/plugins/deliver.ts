// A plugin that taps, and does nothing with, the -M extended messages minimal pgbun forwards unseen: what a delivery costs.
import type { PgbunPlugin } from "../../plugin-sdk/index.ts";

/**
 * pgbun with only auth, pool and transaction-detection sees a pgbench -M extended transaction's Parse, Bind, Describe,
 * Execute and Sync only as headers, and ParseComplete, BindComplete, RowDescription and CommandComplete not at all;
 * tapping them makes the core deliver each one whole to a hook (`bun bench/ab.ts --base minimal --plus
 * bench/plugins/deliver.ts`): the difference is nine deliveries a transaction.
 */
export default (): PgbunPlugin => ({
  name: "deliver",
  apply(api) {
    for (const t of ["Parse", "Bind", "Describe", "Execute", "Sync"] as const) api.onClientMessage(t, () => undefined);
    for (const t of ["ParseComplete", "BindComplete", "RowDescription", "CommandComplete"] as const) api.onServerMessage(t, () => undefined);
  },
});
