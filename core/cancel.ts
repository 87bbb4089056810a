// CancelRequest routing: pooler-issued keys map to a client; a cancel reaches only the server running its query.
import { randomInt, timingSafeEqual } from "node:crypto";
import { cancelRequest } from "../plugin-sdk/protocol/writer.ts";
import type { ClientConnection } from "./client.ts";
import type { ServerConnection } from "./server.ts";
import type { Pgbun } from "./pgbun.ts";
import { workerSocketPath } from "./workers.ts";

export class CancelRegistry {
  constructor(private readonly core: Pgbun) {}

  /**
   * Issues the client its key: the pid names the client's slot in the core's ClientList (so no table of keys is
   * kept) and, in its low 4 bits, the worker that owns it; the secret is random, compared in constant time.
   */
  register(client: ClientConnection): void {
    let secret: number;
    do secret = randomInt(0, 0x7fffffff) | (randomInt(0, 2) << 31);
    while (secret === 0); // 0 marks a client without a key
    client.cancelSecret = secret;
  }

  /** The pid of the key a client in `slot` of worker `worker` is given. */
  static pidOf(slot: number, worker: number): number {
    return (((slot + 1) << 4) | worker) >>> 0;
  }

  /** A CancelRequest packet (length, code, pid, secret); unknown or wrong keys are ignored, as PostgreSQL does. */
  handleRequest(packet: Buffer): void {
    if (packet.length !== 16) return;
    const pid = packet.readInt32BE(8);
    const owner = pid & 0xf;
    const w = this.core.worker;
    if (w.count > 1 && owner !== w.id && owner < w.count) return this.forwardToWorker(owner, packet);
    const client = this.core.clients.at((pid >>> 4) - 1);
    if (!client || client.cancelSecret === 0 || client.cancelPid !== pid) return;
    const want = Buffer.alloc(4);
    want.writeInt32BE(client.cancelSecret | 0, 0);
    if (!timingSafeEqual(want, packet.subarray(12, 16))) return;
    const server = client.server;
    if (!server || client.inSync) return; // nothing running: a late cancel must not hit anyone
    this.cancelServer(server);
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

  /** Sends PostgreSQL a CancelRequest for the server's backend; the server is not reused until it completes. */
  cancelServer(server: ServerConnection): void {
    if (!server.backendPid) return;
    server.cancelsInFlight++;
    const { host, port } = server.target;
    const payload = cancelRequest(server.backendPid, server.backendSecret);
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      server.cancelsInFlight--;
      this.core.cancelFinished(server);
    };
    const timer = setTimeout(finish, this.core.config.settings.cancel_wait_timeout * 1000 || 10_000);
    Bun.connect({
      hostname: host,
      port,
      socket: {
        open(s) {
          s.write(payload);
        },
        data() {},
        close: finish,
        error: finish,
        connectError: finish,
      },
    }).catch(finish);
  }
}
