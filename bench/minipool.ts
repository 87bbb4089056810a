// The least transaction pooler on Bun: headers walked, servers handed out per transaction; the floor any pooler on this runtime pays.
// Usage: bun bench/minipool.ts LISTEN_PORT PG_HOST PG_PORT [POOL_SIZE]   (LISTEN_PORT 0: any free port; prints the port when ready)
//
// A benchmark reference, not a pooler to run: trust logins only (it answers every client's StartupMessage itself and
// logs its servers in without a password), one pool per (user, database), no reset between clients, no timeouts, no
// cancel, no TLS (an SSLRequest is refused). What it does per transaction is what every transaction pooler must:
// walk each message header of both directions (to find the client's Terminate and the server's ReadyForQuery), take
// a server for a client that has none, give it back at ReadyForQuery 'I', and link the next waiting client. The bytes
// themselves pass as they were read, one write per read. bench/passthrough.ts is the same relay without any of that.
// A server goes back only once it has answered every Query and Sync sent to it (drivers pipeline: an 'I' in the middle of
// a read is not the end of the client's work), as PgBouncer counts the ReadyForQuery it still expects.
import type { Socket, SocketHandler } from "bun";

const TERMINATE = 0x58; // 'X'
const READY_FOR_QUERY = 0x5a; // 'Z'
const IDLE = 0x49; // 'I'
const QUERY = 0x51; // 'Q'
const SYNC = 0x53; // 'S' (from a client; from a server it is ParameterStatus)
const SSL_REQUEST = 80877103;

/** The types each direction counts: a client's requests that each get one ReadyForQuery, and a server's ReadyForQuery. */
const FRONTEND_COUNTED = new Uint8Array(256);
FRONTEND_COUNTED[QUERY] = 1;
FRONTEND_COUNTED[SYNC] = 1;
const BACKEND_COUNTED = new Uint8Array(256);
BACKEND_COUNTED[READY_FOR_QUERY] = 1;
const PROTOCOL_3 = 196608;

/** Where a direction's header walk stands between reads. */
class Walk {
  /** Body bytes of the current message still to come. */
  rest = 0;
  /** A header split across reads: its bytes so far. */
  readonly head = new Uint8Array(5);
  headHave = 0;
  /** The type of the last message whose header was read, and the status byte of the last ReadyForQuery. */
  lastType = 0;
  status = 0;
  /** The last header was a ReadyForQuery whose status byte is in the next read. */
  wantStatus = false;
  /** After walk(): where in the read a header split at its end starts (its bytes are in `head`), else -1. */
  heldFrom = -1;
  /** Messages of the counted types seen so far. */
  counted = 0;

  constructor(readonly counts: Uint8Array) {}

  /** At a message boundary right after a ReadyForQuery 'I': the server may serve another client. */
  get idle(): boolean {
    return this.rest === 0 && this.headHave === 0 && this.lastType === READY_FOR_QUERY && this.status === IDLE;
  }
}

/**
 * Walks the headers of `buf`. Returns the offset of a Terminate's header, or -1. A header split at the read's end is
 * kept in `w.head`, and `w.heldFrom` says where it starts in `buf`, so the caller can keep those bytes back.
 */
function walk(w: Walk, buf: Uint8Array): number {
  const n = buf.length;
  let i = 0;
  w.heldFrom = -1;
  if (w.wantStatus && n > 0) {
    w.status = buf[0]!;
    w.wantStatus = false;
  }
  if (w.rest > 0) {
    const k = w.rest < n ? w.rest : n;
    w.rest -= k;
    i = k;
  }
  while (i < n) {
    let type: number;
    let len: number;
    if (w.headHave > 0 || n - i < 5) {
      const from = i;
      while (w.headHave < 5 && i < n) w.head[w.headHave++] = buf[i++]!;
      if (w.headHave < 5) {
        w.heldFrom = from;
        return -1;
      }
      const h = w.head;
      type = h[0]!;
      len = ((h[1]! << 24) | (h[2]! << 16) | (h[3]! << 8) | h[4]!) >>> 0;
      w.headHave = 0;
    } else {
      type = buf[i]!;
      len = ((buf[i + 1]! << 24) | (buf[i + 2]! << 16) | (buf[i + 3]! << 8) | buf[i + 4]!) >>> 0;
      i += 5;
    }
    w.lastType = type;
    w.counted += w.counts[type]!;
    if (type === TERMINATE) return i - 5 < 0 ? 0 : i - 5;
    const body = len - 4;
    if (type === READY_FOR_QUERY) {
      if (i < n) w.status = buf[i]!;
      else w.wantStatus = true;
    }
    const k = body < n - i ? body : n - i;
    i += k;
    w.rest = body - k;
  }
  return -1;
}

/** Writes to a socket; what it does not take is queued and `source` paused until its drain. */
class Out {
  queue: Uint8Array[] | null = null;
  paused: Socket<any> | null = null;

  constructor(public socket: Socket<any>) {}

  write(data: Uint8Array, source: Socket<any> | null): void {
    if (this.queue !== null) {
      this.queue.push(Buffer.from(data));
      return;
    }
    const n = this.socket.write(data);
    if (n < data.length && n >= 0) {
      this.queue = [Buffer.from(data.subarray(n))];
      if (source !== null) {
        this.paused = source;
        source.pause();
      }
    }
  }

  drain(): void {
    const q = this.queue;
    if (q === null) return;
    while (q.length > 0) {
      const head = q[0]!;
      const n = this.socket.write(head);
      if (n < 0) return;
      if (n < head.length) {
        q[0] = head.subarray(n);
        return;
      }
      q.shift();
    }
    this.queue = null;
    this.paused?.resume();
    this.paused = null;
  }
}

class Pool {
  readonly idle: Server[] = [];
  readonly waiting: Client[] = [];
  size = 0;
  /** The first server's login messages a client gets (ParameterStatus ... BackendKeyData), once one logged in. */
  welcome: Uint8Array | null = null;
  readonly greeting: Client[] = [];

  constructor(
    readonly user: string,
    readonly database: string,
  ) {}

  /** A server for `client` now, or null: then the client waits for one released or opened. */
  acquire(client: Client): Server | null {
    const s = this.idle.pop();
    if (s !== undefined) return s;
    if (this.size < poolSize) {
      this.size++;
      Bun.connect<Server>({ hostname: pgHost, port: pgPort, data: new Server(this), socket: serverHandlers }).catch(() => this.size--);
    }
    this.waiting.push(client);
    client.socket.pause();
    return null;
  }

  /** A server free again: to the first waiting client, or idle. */
  release(server: Server): void {
    const next = this.waiting.shift();
    if (next === undefined) {
      this.idle.push(server);
      return;
    }
    next.link(server);
  }
}

const pools = new Map<string, Pool>();

class Client {
  pool: Pool | null = null;
  server: Server | null = null;
  readonly walk = new Walk(FRONTEND_COUNTED);
  /** Queries and Syncs among the parked bytes. */
  parkedRequests = 0;
  out: Out;
  /** The startup packet while it is incomplete. */
  startup: Uint8Array | null = null;
  /** What the client sent while it waited for a server. */
  parked: Uint8Array[] | null = null;
  /** A header split at a read's end, kept back until its type is known (it may be a Terminate). */
  headBytes: Uint8Array | null = null;

  constructor(readonly socket: Socket<Client>) {
    this.out = new Out(socket);
  }

  data(chunk: Uint8Array): void {
    if (this.pool === null) return this.startupData(chunk);
    let buf = chunk;
    if (this.headBytes !== null) {
      buf = Buffer.concat([this.headBytes, chunk]);
      this.headBytes = null;
      // the header is walked again from the joined bytes
      this.walk.headHave = 0;
    }
    const counted = this.walk.counted;
    const x = walk(this.walk, buf);
    const requests = this.walk.counted - counted;
    let end = x >= 0 ? x : buf.length;
    const held = this.walk.heldFrom;
    if (held >= 0) {
      this.headBytes = Buffer.from(buf.subarray(held));
      this.walk.headHave = 0;
      end = held;
    }
    if (end > 0) this.toServer(end === buf.length ? buf : buf.subarray(0, end), requests);
    if (x >= 0) this.socket.end();
  }

  private toServer(bytes: Uint8Array, requests: number): void {
    let server = this.server;
    if (server === null) {
      if (this.parked !== null) {
        this.parked.push(Buffer.from(bytes)); // waiting already
        this.parkedRequests += requests;
        return;
      }
      server = this.pool!.acquire(this);
      if (server === null) {
        this.parked = [Buffer.from(bytes)];
        this.parkedRequests = requests;
        return;
      }
      this.server = server;
      server.client = this;
    }
    server.inFlight += requests;
    server.out.write(bytes, this.socket);
  }

  link(server: Server): void {
    this.server = server;
    server.client = this;
    const parked = this.parked;
    this.parked = null;
    server.inFlight += this.parkedRequests;
    this.parkedRequests = 0;
    if (parked !== null) for (const p of parked) server.out.write(p, this.socket);
    this.socket.resume();
  }

  private startupData(chunk: Uint8Array): void {
    const buf = this.startup === null ? chunk : Buffer.concat([this.startup, chunk]);
    if (buf.length < 8) {
      this.startup = Buffer.from(buf);
      return;
    }
    const len = ((buf[0]! << 24) | (buf[1]! << 16) | (buf[2]! << 8) | buf[3]!) >>> 0;
    if (buf.length < len) {
      this.startup = Buffer.from(buf);
      return;
    }
    this.startup = null;
    const code = ((buf[4]! << 24) | (buf[5]! << 16) | (buf[6]! << 8) | buf[7]!) >>> 0;
    if (code === SSL_REQUEST) {
      this.socket.write(new Uint8Array([0x4e])); // 'N'
      if (buf.length > len) this.startupData(buf.subarray(len));
      return;
    }
    if (code !== PROTOCOL_3) {
      this.socket.end();
      return;
    }
    const parts = new TextDecoder().decode(buf.subarray(8, len - 1)).split("\0");
    const params = new Map<string, string>();
    for (let k = 0; k + 1 < parts.length; k += 2) params.set(parts[k]!, parts[k + 1]!);
    const user = params.get("user") ?? "";
    const database = params.get("database") ?? user;
    const key = `${user}\0${database}`;
    let pool = pools.get(key);
    if (pool === undefined) pools.set(key, (pool = new Pool(user, database)));
    this.pool = pool;
    if (pool.welcome !== null) this.socket.write(pool.welcome);
    else {
      pool.greeting.push(this);
      if (pool.size === 0) {
        pool.size++;
        Bun.connect<Server>({ hostname: pgHost, port: pgPort, data: new Server(pool), socket: serverHandlers }).catch(() => this.socket.end());
      }
    }
  }

  closed(): void {
    const server = this.server;
    this.server = null;
    if (this.pool !== null) {
      const w = this.pool.waiting.indexOf(this);
      if (w >= 0) this.pool.waiting.splice(w, 1);
    }
    if (server === null) return;
    server.client = null;
    // a server left inside a transaction or mid-message cannot serve anyone else
    if (server.free) this.pool!.release(server);
    else server.socket?.end();
  }
}

class Server {
  socket: Socket<Server> | null = null;
  client: Client | null = null;
  readonly walk = new Walk(BACKEND_COUNTED);
  /** Queries and Syncs sent whose ReadyForQuery has not come yet. */
  inFlight = 0;
  out!: Out;
  /** Login messages until the first ReadyForQuery. */
  login: Uint8Array[] | null = [];

  constructor(readonly pool: Pool) {}

  opened(socket: Socket<Server>): void {
    this.socket = socket;
    this.out = new Out(socket);
    const enc = new TextEncoder();
    const body = enc.encode(`user\0${this.pool.user}\0database\0${this.pool.database}\0\0`);
    const msg = new Uint8Array(8 + body.length);
    new DataView(msg.buffer).setUint32(0, msg.length);
    new DataView(msg.buffer).setUint32(4, PROTOCOL_3);
    msg.set(body, 8);
    socket.write(msg);
  }

  data(chunk: Uint8Array): void {
    if (this.login !== null) return this.loginData(chunk);
    const counted = this.walk.counted;
    walk(this.walk, chunk);
    this.inFlight -= this.walk.counted - counted;
    const client = this.client;
    if (client !== null) client.out.write(chunk, this.socket);
    if (client !== null && this.free) {
      client.server = null;
      this.client = null;
      this.pool.release(this);
    }
  }

  /** Every request answered and the last answer a ReadyForQuery 'I' at a message boundary. */
  get free(): boolean {
    return this.inFlight === 0 && this.walk.idle;
  }

  private loginData(chunk: Uint8Array): void {
    this.login!.push(Buffer.from(chunk));
    const all = Buffer.concat(this.login!);
    // whole messages only: AuthenticationOk, ParameterStatus ..., BackendKeyData, ReadyForQuery
    let i = 0;
    const keep: Uint8Array[] = [];
    while (i + 5 <= all.length) {
      const len = all.readUInt32BE(i + 1);
      if (i + 1 + len > all.length) return;
      const type = all[i]!;
      if (type === 0x52 && all.readUInt32BE(i + 5) !== 0) {
        console.error("bench/minipool.ts: the server asked for a password; it logs in with trust only");
        process.exit(1);
      }
      if (type === 0x45) {
        console.error(`bench/minipool.ts: login failed: ${all.subarray(i + 5, i + 1 + len).toString("latin1")}`);
        process.exit(1);
      }
      if (type !== 0x52 && type !== READY_FOR_QUERY) keep.push(all.subarray(i, i + 1 + len));
      i += 1 + len;
      if (type === READY_FOR_QUERY) {
        this.login = null;
        this.walk.lastType = READY_FOR_QUERY;
        this.walk.status = IDLE;
        const pool = this.pool;
        if (pool.welcome === null) {
          const ok = Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 0]);
          const rfq = Buffer.from([READY_FOR_QUERY, 0, 0, 0, 5, IDLE]);
          pool.welcome = Buffer.concat([ok, ...keep, rfq]);
          for (const c of pool.greeting.splice(0)) c.socket.write(pool.welcome);
        }
        pool.release(this);
        return;
      }
    }
    this.login = [all];
  }
}

const clientHandlers: SocketHandler<Client> = {
  open(socket) {
    socket.data = new Client(socket);
  },
  data(socket, chunk) {
    socket.data.data(chunk);
  },
  drain(socket) {
    socket.data.out.drain();
  },
  close(socket) {
    socket.data?.closed();
  },
  error() {},
};

const serverHandlers: SocketHandler<Server> = {
  open(socket) {
    socket.data.opened(socket);
  },
  data(socket, chunk) {
    socket.data.data(chunk);
  },
  drain(socket) {
    socket.data.out?.drain();
  },
  close(socket) {
    const s = socket.data;
    s.pool.size--;
    const i = s.pool.idle.indexOf(s);
    if (i >= 0) s.pool.idle.splice(i, 1);
    s.client?.socket.end();
  },
  error() {},
  connectError(socket) {
    socket.data.pool.size--;
  },
};

const [listenArg, pgHost = "127.0.0.1", pgPortArg, poolArg = "20"] = process.argv.slice(2);
const listenPort = Number(listenArg);
const pgPort = Number(pgPortArg);
const poolSize = Number(poolArg);
if (!Number.isInteger(listenPort) || !Number.isInteger(pgPort) || pgPort <= 0 || !Number.isInteger(poolSize) || poolSize <= 0) {
  console.error("usage: bun bench/minipool.ts LISTEN_PORT PG_HOST PG_PORT [POOL_SIZE]");
  process.exit(2);
}
const listener = Bun.listen<Client>({ hostname: "127.0.0.1", port: listenPort, socket: clientHandlers });
console.log(listener.port);
