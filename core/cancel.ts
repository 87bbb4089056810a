// CancelRequest routing: pooler-issued keys map to a client; a cancel reaches only the server running its query.
import { join } from "node:path";
import type { Socket, TCPSocketConnectOptions, UnixSocketOptions } from "bun";
import type { ClientConnection } from "./client.ts";
import type { ServerConnection } from "./server.ts";
import type { Pgbun } from "./pgbun.ts";
import { cancelRequest } from "../plugin-sdk/protocol/writer.ts";
import { workerSocketPath } from "./workers.ts";

/** Low bits of a key's pid that name the worker which issued it: none for one process, at most 4 (16 workers). */
export function workerBits(count: number): number {
  return count > 1 ? 32 - Math.clz32(count - 1) : 0;
}

/** Opens the connection a CancelRequest travels on (TCP, or the server's Unix socket): Bun.connect, or a stand-in in unit tests. */
export type CancelConnect = (options: TCPSocketConnectOptions<undefined> | UnixSocketOptions<undefined>) => Promise<Socket<undefined>>;

/**
 * Issues and finds cancel keys. Both halves of a key are random (crypto.getRandomValues): with `workers = N > 1`
 * the pid's low workerBits(N) bits name the issuing worker, so a key has 64 - workerBits(N) random bits (64 for one
 * process, 63 for 2 workers, 60 for 9-16). A guessed key must hit a live client's pid and secret at once; the pid
 * of a known client no longer tells anything about its slot or its next key.
 *
 * Lookup is O(1) without a Map (a JSC Map entry costs ~70 bytes a client): `pids` holds the pid of each ClientList
 * slot's key and `index` is a linear-probing hash table of slot+1 keyed by that pid, ~12 bytes a client in all.
 */
export class CancelRegistry {
  /** Pid of the key issued to the client in each ClientList slot; 0 = none. Signed, as clients see an Int32. */
  private pids = new Int32Array(0);
  /** Open-addressing table (power-of-two size, at most half full) of slot + 1, found by the slot's pid; 0 = empty. */
  private index = new Int32Array(0);
  private entries = 0;
  private readonly random = new Int32Array(2);

  constructor(
    private readonly core: Pgbun,
    private readonly connect: CancelConnect = (o) => ("unix" in o ? Bun.connect(o) : Bun.connect(o)),
  ) {}

  /** Issues the client in its slot a fresh key (pid unique among this worker's keys; neither half 0). */
  register(client: ClientConnection): void {
    const slot = client.slot;
    if (slot < 0) return;
    this.forget(client);
    const w = this.core.worker;
    const mask = (1 << workerBits(w.count)) - 1;
    const r = this.random;
    let pid: number;
    do {
      crypto.getRandomValues(r);
      pid = (r[0]! & ~mask) | w.id;
    } while (pid === 0 || r[1] === 0 || this.slotOf(pid) >= 0); // 0 marks a client without a key
    if (slot >= this.pids.length) this.growPids(slot);
    this.pids[slot] = pid;
    if ((this.entries + 1) * 2 > this.index.length) this.rehash(Math.max(16, this.index.length * 2));
    this.insert(slot);
    this.entries++;
    client.cancelSecret = r[1]!;
  }

  /** Withdraws the client's key (it leaves, or gets a new one); the tables are dropped once no key is left. */
  forget(client: ClientConnection): void {
    const slot = client.slot;
    if (slot < 0 || slot >= this.pids.length || this.pids[slot] === 0) return;
    if (this.core.clients.at(slot) !== client) return;
    this.remove(slot);
    this.pids[slot] = 0;
    client.cancelSecret = 0;
    if (--this.entries === 0) {
      this.pids = new Int32Array(0);
      this.index = new Int32Array(0);
    }
  }

  /** The pid of the client's key, 0 when it has none (still logging in, or gone). */
  pidOf(client: ClientConnection): number {
    const slot = client.slot;
    if (slot < 0 || slot >= this.pids.length || client.cancelSecret === 0) return 0;
    return this.pids[slot]!;
  }

  /** The client holding the key with this pid, if any (the secret is not checked here). */
  find(pid: number): ClientConnection | undefined {
    const slot = this.slotOf(pid | 0);
    return slot < 0 ? undefined : this.core.clients.at(slot);
  }

  /** A CancelRequest packet (length, code, pid, secret); unknown or wrong keys are ignored, as PostgreSQL does. */
  handleRequest(packet: Buffer): void {
    if (packet.length !== 16) return;
    const pid = packet.readInt32BE(8);
    const w = this.core.worker;
    if (w.count > 1) {
      const owner = pid & ((1 << workerBits(w.count)) - 1);
      if (owner !== w.id && owner < w.count) return this.forwardToWorker(owner, packet);
    }
    const client = this.find(pid);
    if (!client || client.cancelSecret === 0) return;
    // one XOR over the whole secret: no early exit whose timing would tell how many leading bytes were right
    if ((packet.readInt32BE(12) ^ client.cancelSecret) !== 0) return;
    const server = client.server;
    if (!server || client.inSync) return; // nothing running: a late cancel must not hit anyone
    this.cancelServer(server);
  }

  /** Home position of a pid in an index of `size` entries (multiplicative hash: the low bits hold the worker). */
  private static home(pid: number, size: number): number {
    return (Math.imul(pid, 0x9e3779b1) >>> 0) % size;
  }

  private slotOf(pid: number): number {
    const idx = this.index;
    const size = idx.length;
    if (size === 0) return -1;
    for (let i = CancelRegistry.home(pid, size); ; i = (i + 1) & (size - 1)) {
      const e = idx[i]!;
      if (e === 0) return -1;
      if (this.pids[e - 1] === pid) return e - 1;
    }
  }

  private insert(slot: number): void {
    const idx = this.index;
    const size = idx.length;
    let i = CancelRegistry.home(this.pids[slot]!, size);
    while (idx[i] !== 0) i = (i + 1) & (size - 1);
    idx[i] = slot + 1;
  }

  /** Deletes the slot's entry by shifting later entries of its probe run back (no tombstones to pile up). */
  private remove(slot: number): void {
    const idx = this.index;
    const size = idx.length;
    const m = size - 1;
    let i = CancelRegistry.home(this.pids[slot]!, size);
    while (idx[i] !== slot + 1) {
      if (idx[i] === 0) return;
      i = (i + 1) & m;
    }
    for (let j = (i + 1) & m; idx[j] !== 0; j = (j + 1) & m) {
      const h = CancelRegistry.home(this.pids[idx[j]! - 1]!, size);
      // the entry at j may fill the hole at i only if its home is not cyclically within (i, j]
      if ((j > i && (h <= i || h > j)) || (j < i && h <= i && h > j)) {
        idx[i] = idx[j]!;
        i = j;
      }
    }
    idx[i] = 0;
  }

  private growPids(slot: number): void {
    let n = Math.max(16, this.pids.length);
    while (n <= slot) n *= 2;
    const next = new Int32Array(n);
    next.set(this.pids);
    this.pids = next;
  }

  private rehash(size: number): void {
    this.index = new Int32Array(size);
    const pids = this.pids;
    for (let s = 0; s < pids.length; s++) if (pids[s] !== 0) this.insert(s);
  }

  /** Hands a CancelRequest to the sibling worker that issued its key, over that worker's private socket. */
  private forwardToWorker(owner: number, packet: Buffer): void {
    const copy = Buffer.from(packet);
    Bun.connect({
      unix: workerSocketPath(this.core.worker.supervisorPid, owner),
      socket: {
        open(s) {
          s.write(copy);
          s.end();
        },
        data() {},
      },
    }).catch((err: unknown) => this.core.log.warn({ err, worker: owner }, "could not forward a cancel request to its worker"));
  }

  /**
   * Sends PostgreSQL a CancelRequest for the server's backend; the server is not reused until it completes.
   * PostgreSQL closes the connection once it has signalled the backend: that close is the only proof the cancel is
   * spent. cancel_wait_timeout bounds the wait. A cancel not sent by then is never sent (a connect completing later
   * is closed unwritten: the server may already serve another client) and the server goes back to its pool; one sent
   * but not confirmed may still land, so its server is closed instead of reused (PgBouncer PR #717's rule).
   */
  cancelServer(server: ServerConnection): void {
    if (!server.backendPid) return;
    server.cancelsInFlight++;
    const core = this.core;
    const { host, port } = server.target;
    const payload = cancelRequest(server.backendPid, server.backendSecret);
    let done = false;
    let sent = false;
    let socket: Socket<undefined> | null = null;
    const finish = (confirmed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      try {
        socket?.end();
      } catch {}
      server.cancelsInFlight--;
      if (sent && !confirmed) {
        core.log.warn({ server: server.label }, "PostgreSQL did not confirm the cancel request: the server is closed, not reused");
        server.closeNeeded = true;
        if (server.state === "being_canceled") server.close("cancel request not confirmed");
        return;
      }
      core.cancelFinished(server);
    };
    const timer = setTimeout(() => finish(false), core.config.settings.cancel_wait_timeout * 1000);
    const unconfirmed = () => finish(false);
    // a host that is a directory is the server's Unix socket there (core/pgbun.ts connectSocket)
    const where = host.startsWith("/") ? { unix: join(host, `.s.PGSQL.${port}`) } : { hostname: host, port };
    this.connect({
      ...where,
      socket: {
        open(s) {
          // too late: whoever holds the server now must not have their query cancelled
          if (done) {
            s.end();
            return;
          }
          socket = s;
          s.write(payload);
          sent = true;
        },
        data() {},
        // PostgreSQL's close confirms the cancel; a reset does not (it may not have read the request)
        close: (_s, err) => finish(err === undefined),
        error: unconfirmed,
        connectError: unconfirmed,
      },
    }).then((s) => {
      if (done && socket === null) s.end();
    }, unconfirmed);
  }
}
