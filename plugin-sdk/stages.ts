// The named stages that order taps across plugins (tapable's `stage`): lower runs first, 0 is the default.

/**
 * Where the built-ins tap, so a plugin can place itself before or after them by name:
 * `api.onClientMessage("Query", fn, { stage: Stage.Answer })`. Taps of one stage run in plugin order.
 */
export const Stage = {
  /** Sees every message before anything may answer, drop or rewrite it (pgbun:stats counts here). */
  Observe: -1000,
  /** Right after Observe (pgbun:stats' per-query timing). */
  ObserveTiming: -999,
  /** The admin console takes its own clients' messages and logins before any other plugin. */
  Console: -1000,
  /** Plugins that answer or refuse a message themselves (a firewall, a virtual table); after the observers. */
  Answer: -100,
  /** pgbun:session-state screens statements for session state. */
  SessionScreen: -30,
  /** pgbun:prepared-statements observes the answers it owes before ReadyForQuery goes out. */
  PreparedObserve: -20,
  /** pgbun:session-state checks a suspect server at ReadyForQuery. */
  SessionCheck: -15,
  /** pgbun:prepared-statements forgets a client's unnamed statement when its server is released. */
  PreparedRelease: -10,
  /** pgbun:pool-statement refuses transaction blocks in statement mode. */
  StatementGuard: -5,
  Default: 0,
  /** Answers what nothing earlier took (a catch-all reply). */
  Fallback: 100,
  /** Rewrites what goes on the wire (pgbun:prepared-statements renames statements): after everyone saw the client's. */
  Rewrite: 1000,
  /** Sees messages after every rewrite (pgbun:stats' closing counters). */
  ObserveLast: 1000,
  /**
   * Replaces a message the server must answer (returning bytes), after every other tap saw it: the plugins that
   * pair a message with its answer (Rewrite, ObserveLast) then count the one the replacement's answer belongs to.
   */
  Replace: 1001,
} as const;

export type StageName = keyof typeof Stage;
