// Built-in plugin: finds transaction boundaries and releases the server in transaction and statement mode.
import { Backend, TxStatus, type PgbunPlugin } from "../../plugin-sdk/index.ts";

/**
 * A server is released only on ReadyForQuery 'I' once every Query/Sync the client sent has been answered and
 * no extended-protocol message or COPY is outstanding (client.inSync): never mid-pipeline, COPY or transaction.
 */
export default function transactionDetection(): PgbunPlugin {
  return {
    name: "pgbun:transaction-detection",
    provides: ["transaction-detection"],
    apply(api) {
      api.onServerMessage(Backend.ReadyForQuery, (ctx) => {
        const client = ctx.client;
        if (client.poolMode === "session" || client.pinReason !== null) return undefined;
        // internal work (a rollback, a state check) queued by another plugin finishes first; that plugin releases
        if (client.txStatus === TxStatus.Idle && client.inSync && ctx.server!.internalPending === 0) ctx.releaseServer();
        return undefined;
      });
    },
  };
}
