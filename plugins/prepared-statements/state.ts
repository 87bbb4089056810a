// What the prepared-statements plugin keeps per client (its statement names) and per server (pgbun's statements).
import { type Client, type Server } from "../../plugin-sdk/index.ts";
import { Req, RequestQueue } from "./requests.ts";

export const NAME = "pgbun:prepared-statements";

/** One statement pgbun prepared on one server, under its own name. */
export interface ServerStatement {
  /** pgbun's name for it on that server (pgbun_N). */
  readonly name: string;
  /** Query text plus the parameter types the Parse gave: statements of equal keys may be shared. */
  readonly key: string;
  /** Parameter types the server resolved (ParameterDescription); null until described. */
  paramOids: readonly number[] | null;
  /** Parameter types and result columns (see shape.ts); null until described. */
  shape: string | null;
  /** Its Parse failed or was skipped after an error: it does not exist on the server. */
  failed: boolean;
}

/** A client's named statement. */
export interface ClientStatement {
  query: string;
  paramTypes: readonly number[];
  key: string;
  /**
   * The server statement made for this statement's own Parse: its shape is what PostgreSQL would hold under the
   * client's name. null until the statement is parsed for real (a Parse answered while no server was free).
   */
  own: ServerStatement | null;
  /**
   * Its Parse was streamed (longer than the prefix a plugin sees): its text was never held, so it exists only where
   * that Parse went, and a Bind or Describe on another server fails as a missing statement does.
   */
  streamed?: true;
}

export interface ClientStatements {
  byName: Map<string, ClientStatement>;
  queue: RequestQueue;
  /** Keys bound since the last ReadyForQuery (forgotten on the server when the server reports an error for them). */
  bound: string[];
  /** A statement parsed for a held Bind/Describe: once described, the held message runs again. */
  held: ServerStatement | null;
  /**
   * The client parsed its unnamed statement on the server it has now: only then is the server's unnamed statement
   * its own (another client may have left one there).
   */
  unnamedHere: boolean;
}

export interface ServerStatements {
  /** key → pgbun's statement on this server, in LRU order (oldest first). */
  names: Map<string, ServerStatement>;
  /** Names forgotten after an error, closed on the server at its next use. */
  forgotten: string[];
  seq: number;
  /**
   * The statement last set() into `names`, so the last in its order while it is still in it (a statement once
   * deleted is never set again): a Bind of it needs no move to the end.
   */
  newest: ServerStatement | null;
}

/**
 * The client's state, made at its first extended-protocol message (a client of simple Queries only never has one:
 * its ReadyForQuery costs a lookup). Called from client-side taps only, which run before the core counts the
 * message: the ReadyForQuery answers still owed then are all for Queries sent while it had none, queued here so
 * those ReadyForQuery answers are not taken for this message's.
 */
export function clientState(client: Client): ClientStatements {
  const s = client.data[NAME] as ClientStatements | undefined;
  return s !== undefined ? s : newClientState(client);
}

/** clientState's first use, apart so the lookup above stays small enough to inline into every client tap. */
function newClientState(client: Client): ClientStatements {
  const s: ClientStatements = { byName: new Map(), queue: new RequestQueue(), bound: [], held: null, unnamedHere: false };
  client.data[NAME] = s;
  for (let owed = client.rfqPending; owed > 0; owed--) s.queue.push(Req.Query);
  return s;
}

/** The client's state if it has one (server-side taps: a client without one has nothing in flight to place). */
export function knownState(client: Client): ClientStatements | undefined {
  return client.data[NAME] as ClientStatements | undefined;
}

export function serverState(server: Server): ServerStatements {
  let s = server.data[NAME] as ServerStatements | undefined;
  if (!s) server.data[NAME] = s = { names: new Map(), forgotten: [], seq: 0, newest: null };
  return s;
}
