// The name pgbun:stats goes by; what it offers as capability "stats" (StatsApi, the counters) is declared in the SDK.
export { COUNTER_FIELDS, type CounterField, type Counters, type StatsApi } from "../../plugin-sdk/index.ts";

export const PLUGIN_NAME = "pgbun:stats";
