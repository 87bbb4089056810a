// A bare Bun TCP pass-through to PostgreSQL (no parsing, no pooling): the benchmark's floor for any proxy on this runtime.
// Usage: bun bench/passthrough.ts LISTEN_PORT PG_HOST PG_PORT   (LISTEN_PORT 0: any free port; prints the port when ready)
import type { Socket, SocketHandler } from "bun";

/**
 * One direction of a link: bytes from `source` to `dest`. Bun's write() sends what the kernel takes and keeps nothing,
 * so the rest is copied into `queue`, the source is paused, and the queue is sent on the destination's drain.
 */
class Pipe {
  dest: Socket<Link> | null = null;
  readonly queue: Uint8Array[] = [];
  /** The source has closed: end the destination once the queue is sent. */
  ending = false;

  constructor(
    readonly link: Link,
    public source: Socket<Link> | null,
  ) {}

  forward(data: Uint8Array): void {
    const dest = this.dest;
    if (dest === null || this.queue.length > 0) {
      this.queue.push(Buffer.from(data)); // the read buffer is only valid during the data callback
      this.source?.pause();
      return;
    }
    const n = dest.write(data);
    if (n < 0) return this.link.close();
    if (n < data.length) {
      this.queue.push(Buffer.from(data.subarray(n)));
      this.source?.pause();
    }
  }

  /** Sends what is queued (on drain, or once the server socket is open); resumes the source when all is sent. */
  flush(): void {
    const dest = this.dest;
    if (dest === null) return;
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      const n = dest.write(head);
      if (n < 0) return this.link.close();
      if (n < head.length) {
        this.queue[0] = head.subarray(n);
        return;
      }
      this.queue.shift();
    }
    if (this.ending) dest.end();
    else this.source?.resume();
  }

  /** The source closed: end the destination now, or after the queue when bytes are still waiting. */
  sourceClosed(): void {
    this.ending = true;
    this.source = null;
    if (this.queue.length === 0) this.dest?.end();
  }
}

/** A client socket and the PostgreSQL socket opened for it. */
class Link {
  readonly toServer: Pipe;
  readonly toClient: Pipe;

  constructor(readonly client: Socket<Link>) {
    this.toServer = new Pipe(this, client);
    this.toClient = new Pipe(this, null);
    this.toClient.dest = client;
  }

  serverOpened(server: Socket<Link>): void {
    this.toServer.dest = server;
    this.toClient.source = server;
    this.toServer.flush();
  }

  close(): void {
    this.client.end();
    this.toServer.dest?.end();
  }
}

const clientHandlers: SocketHandler<Link> = {
  open(client) {
    const link = new Link(client);
    client.data = link;
    Bun.connect<Link>({ hostname: pgHost, port: pgPort, data: link, socket: serverHandlers }).catch(() => client.end());
  },
  data(client, chunk) {
    client.data.toServer.forward(chunk);
  },
  drain(client) {
    client.data.toClient.flush();
  },
  close(client) {
    client.data?.toServer.sourceClosed();
  },
  error(client) {
    client.data?.close();
  },
};

const serverHandlers: SocketHandler<Link> = {
  open(server) {
    server.data.serverOpened(server);
  },
  data(server, chunk) {
    server.data.toClient.forward(chunk);
  },
  drain(server) {
    server.data.toServer.flush();
  },
  close(server) {
    server.data.toClient.sourceClosed();
  },
  error(server) {
    server.data.close();
  },
  connectError(server) {
    server.data.client.end();
  },
};

const [listenArg, pgHost = "127.0.0.1", pgPortArg] = process.argv.slice(2);
const listenPort = Number(listenArg);
const pgPort = Number(pgPortArg);
if (!Number.isInteger(listenPort) || !Number.isInteger(pgPort) || pgPort <= 0) {
  console.error("usage: bun bench/passthrough.ts LISTEN_PORT PG_HOST PG_PORT");
  process.exit(2);
}
const listener = Bun.listen<Link>({ hostname: "127.0.0.1", port: listenPort, socket: clientHandlers });
console.log(listener.port);
