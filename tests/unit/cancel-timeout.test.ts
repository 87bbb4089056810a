// cancel_wait_timeout: once it fires, no CancelRequest is ever written; a sent but unconfirmed one retires its server.
import { describe, expect, test } from "bun:test";
import type { Socket, TCPSocketConnectOptions } from "bun";
import { CancelRegistry, type CancelConnect } from "../../core/cancel.ts";
import type { Pgbun } from "../../core/pgbun.ts";
import type { ServerConnection } from "../../core/server.ts";
import { SETTINGS } from "../../plugin-sdk/settings.ts";
import { coerceValue } from "../../core/config/settings.ts";
import { cancelRequest } from "../../plugin-sdk/protocol/writer.ts";

const TIMEOUT_S = 0.02;

/** The cancel connection's socket: what was written to it, and whether it was ended. */
class FakeCancelSocket {
  writes: Uint8Array[] = [];
  ended = 0;
  write(data: Uint8Array): number {
    this.writes.push(new Uint8Array(data));
    return data.length;
  }
  end(): void {
    this.ended++;
  }
  terminate(): void {
    this.ended++;
  }
}

/** A Bun.connect stand-in that completes only when the test says so. */
class PendingConnect {
  options: Parameters<CancelConnect>[0] | null = null;
  readonly socket = new FakeCancelSocket();
  private resolve: ((s: Socket<undefined>) => void) | null = null;
  private reject: ((e: Error) => void) | null = null;
  readonly connect: CancelConnect = (options) => {
    this.options = options;
    return new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  };
  private get s(): Socket<undefined> {
    return this.socket as unknown as Socket<undefined>;
  }
  /** The TCP handshake completes: Bun calls open, then resolves the promise. */
  open(): void {
    void this.options!.socket.open?.(this.s);
    this.resolve!(this.s);
  }
  /** PostgreSQL closes the connection (it has signalled the backend). */
  closeByPeer(err?: Error): void {
    void this.options!.socket.close?.(this.s, err);
  }
  fail(): void {
    const err = new Error("ECONNREFUSED");
    void this.options!.socket.connectError?.(this.s, err);
    this.reject!(err);
  }
}

interface FakeServer {
  label: string;
  backendPid: number;
  backendSecret: Uint8Array;
  target: { host: string; port: number };
  cancelsInFlight: number;
  state: string;
  closeNeeded: boolean;
  closed: string[];
  close(reason: string): void;
}

function setup(state = "being_canceled") {
  const finished: FakeServer[] = [];
  let onFinished = () => {};
  const core = {
    config: { settings: { cancel_wait_timeout: TIMEOUT_S } },
    worker: { id: 0, count: 1 },
    log: { warn() {}, info() {}, debug() {} },
    cancelFinished(server: FakeServer) {
      finished.push(server);
      onFinished();
    },
  };
  const server: FakeServer = {
    label: "S-1",
    backendPid: 4242,
    backendSecret: new Uint8Array([1, 2, 3, 4]),
    target: { host: "127.0.0.1", port: 5432 },
    cancelsInFlight: 0,
    state,
    closeNeeded: false,
    closed: [],
    close(reason) {
      this.closed.push(reason);
      this.state = "closed";
      onFinished();
    },
  };
  const pending = new PendingConnect();
  const registry = new CancelRegistry(core as unknown as Pgbun, pending.connect);
  /** Resolves once the cancel is over (the server returned or closed). */
  const settled = new Promise<void>((r) => (onFinished = r));
  const cancel = () => registry.cancelServer(server as unknown as ServerConnection);
  return { server, pending, finished, settled, cancel };
}

describe("cancel_wait_timeout", () => {
  test("a connect completing after the timer fired writes no CancelRequest and is ended", async () => {
    const { server, pending, finished, settled, cancel } = setup();
    cancel();
    expect(server.cancelsInFlight).toBe(1);
    await settled; // the timer fired: the server went back to its pool, and may serve another client now
    expect(finished).toEqual([server]);
    expect(server.cancelsInFlight).toBe(0);
    pending.open();
    await Bun.sleep(0);
    expect(pending.socket.writes).toEqual([]);
    expect(pending.socket.ended).toBeGreaterThan(0);
    expect(server.closed).toEqual([]);
  });

  test("a connect in time sends the CancelRequest; PostgreSQL's close returns the server, the timer then does nothing", async () => {
    const { server, pending, finished, cancel } = setup();
    cancel();
    pending.open();
    expect(pending.socket.writes.map((w) => Buffer.from(w))).toEqual([Buffer.from(cancelRequest(4242, new Uint8Array([1, 2, 3, 4])))]);
    pending.closeByPeer();
    expect(finished).toEqual([server]);
    await Bun.sleep(TIMEOUT_S * 1000 * 3);
    expect(finished).toEqual([server]);
    expect(server.cancelsInFlight).toBe(0);
    expect(server.closed).toEqual([]);
  });

  test("a sent cancel PostgreSQL has not confirmed when the timer fires: socket ended, server closed instead of reused", async () => {
    const { server, pending, finished, settled, cancel } = setup();
    cancel();
    pending.open();
    await settled;
    expect(pending.socket.writes.length).toBe(1);
    expect(pending.socket.ended).toBeGreaterThan(0);
    expect(finished).toEqual([]);
    expect(server.closed.length).toBe(1);
    expect(server.closeNeeded).toBe(true);
    expect(server.cancelsInFlight).toBe(0);
  });

  test("a sent cancel ended by a reset counts as unconfirmed: the server is closed", () => {
    const { server, pending, finished, cancel } = setup();
    cancel();
    pending.open();
    pending.closeByPeer(new Error("ECONNRESET"));
    expect(finished).toEqual([]);
    expect(server.closed.length).toBe(1);
  });

  test("unconfirmed while its client still holds the server: marked to close at release, not closed under the client", async () => {
    const { server, pending, finished, cancel } = setup("active");
    cancel();
    pending.open();
    await Bun.sleep(TIMEOUT_S * 1000 * 3);
    expect(server.closeNeeded).toBe(true);
    expect(server.closed).toEqual([]);
    expect(finished).toEqual([]);
    expect(server.cancelsInFlight).toBe(0);
  });

  test("a connect that fails sent nothing: the server returns at once", async () => {
    const { server, pending, finished, cancel } = setup();
    cancel();
    pending.fail();
    await Bun.sleep(0);
    expect(finished).toEqual([server]);
    expect(server.closed).toEqual([]);
    expect(server.closeNeeded).toBe(false);
  });

  test("0 is refused at config load (PgBouncer's 'no limit' would keep a server out of its pool forever); decimals pass", () => {
    const kind = SETTINGS.cancel_wait_timeout.kind;
    const zero = coerceValue(kind, 0);
    expect(zero.ok).toBe(false);
    expect(coerceValue(kind, "0").ok).toBe(false);
    expect(coerceValue(kind, "10.0")).toEqual({ ok: true, value: 10 });
    expect(coerceValue(kind, 0.5)).toEqual({ ok: true, value: 0.5 });
    expect(SETTINGS.cancel_wait_timeout.doc).toContain("refused");
  });
});
