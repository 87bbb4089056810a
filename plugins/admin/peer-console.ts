// The admin console across workers (workers > 1): SHOW totals from every worker, control commands applied by every worker.
import type { UnixSocketListener } from "bun";
import { rmSync } from "node:fs";
import { commandComplete, noticeResponse } from "../../plugin-sdk/index.ts";
import type { AdminCommand, ShowTarget } from "./commands.ts";
import { ADMIN_DATABASES, type AdminEnv } from "./env.ts";
import { applyControl, checkControl, controlTag, done, error, isControl, SHOWS, SHUTDOWN_MODES, SHUTDOWN_SIGNALS, waitCondition, type ControlCommand, type Reply } from "./execute.ts";
import { mergesAcrossWorkers, mergeTables, sameColumns } from "./merge.ts";
import { adminPeerPath, listenForPeers, PEER_ANSWER_TIMEOUT_MS, PeerCall, type PeerAnswer, type PeerReply } from "./peers.ts";
import { reloadHere, setHere, type ReloadReply } from "./reload.ts";
import { totalsFromStats } from "./show-internals.ts";
import { encodeTable, type Table } from "./table.ts";

interface Answer {
  worker: number;
  call: PeerCall;
  /** null: no answer in time, or the worker is gone. */
  answer: PeerAnswer | null;
}

/** The sibling requests of one console command; cancelled (its calls closed, its waits dropped) when the console client leaves. */
class Asking {
  private readonly calls = new Set<PeerCall>();
  private cancelled = false;

  constructor(private readonly peers: PeerConsole) {}

  /** As a wait's owner: a cancelled command's local wait is dropped. */
  get closed(): boolean {
    return this.cancelled;
  }

  /** Sends `command` to every sibling and collects each one's first answer (or null after the timeout). */
  async all(command: AdminCommand): Promise<Answer[]> {
    const worker = this.peers.worker;
    const { id, count } = worker;
    const asked: Promise<Answer>[] = [];
    for (let w = 0; w < count; w++) {
      if (w === id || this.cancelled) continue;
      const call = new PeerCall(w, adminPeerPath(worker, w), command);
      this.calls.add(call);
      asked.push(call.next(PEER_ANSWER_TIMEOUT_MS).then((answer) => ({ worker: w, call, answer })));
    }
    return Promise.all(asked);
  }

  closeAll(): void {
    for (const c of this.calls) c.close();
    this.calls.clear();
  }

  cancel(): void {
    this.cancelled = true;
    this.closeAll();
  }
}

export class PeerConsole {
  private listener: UnixSocketListener<unknown> | null = null;
  private readonly path: string;

  constructor(private readonly env: AdminEnv) {
    this.path = adminPeerPath(this.worker, this.worker.id);
  }

  get worker() {
    return this.env.api.worker;
  }

  /** Starts serving the siblings' requests on this worker's admin peer socket. */
  start(): void {
    this.listener = listenForPeers(this.path, (command, reply) => this.serve(command, reply));
  }

  stop(): void {
    this.listener?.stop(true);
    this.listener = null;
    rmSync(this.path, { force: true });
  }

  /** The console's command across the workers, or null when this worker answers it alone. */
  execute(cmd: AdminCommand): Reply | null {
    if (cmd.kind === "show" && cmd.target === "totals") return this.later((a) => this.totals(a));
    if (cmd.kind === "show") return mergesAcrossWorkers(cmd.target) ? this.later((a) => this.show(a, cmd.target)) : null;
    if (isControl(cmd)) return this.later((a) => this.control(a, cmd));
    if (cmd.kind === "reload") return this.later((a) => this.applyEverywhere(a, cmd, reloadHere(this.env.api)));
    if (cmd.kind === "set") return this.later((a) => this.applyEverywhere(a, cmd, Promise.resolve(setHere(this.env.api, cmd.key, cmd.value))));
    // the supervisor forwards this signal to every worker (this one included), as for a signal sent to pgbun
    if (cmd.kind === "shutdown" && this.signalSupervisor(SHUTDOWN_SIGNALS[SHUTDOWN_MODES[cmd.wait]])) {
      // a waiting shutdown is answered (WAIT_FOR_CLIENTS waits for this client too); plain SHUTDOWN closes the connection unanswered
      if (cmd.wait !== "now") return done("SHUTDOWN");
      return { kind: "later", result: new Promise<Reply>(() => undefined), cancel: () => undefined };
    }
    return null;
  }

  private later(run: (asking: Asking) => Promise<Reply>): Reply {
    const asking = new Asking(this);
    const result = run(asking).finally(() => asking.closeAll());
    return { kind: "later", result, cancel: () => asking.cancel() };
  }

  private signalSupervisor(signal: NodeJS.Signals): boolean {
    const pid = this.worker.supervisorPid;
    if (!(pid > 1) || pid === process.pid) return false;
    try {
      process.kill(pid, signal);
      return true;
    } catch (err) {
      this.env.api.log.error({ err, supervisor: pid, signal }, "could not signal the supervisor; the command applies to this worker only");
      return false;
    }
  }

  /** A NOTICE per sibling left out, and a log line naming it. */
  private leftOut(workers: number[], what: string): Buffer[] {
    return workers.map((w) => {
      this.env.api.log.warn({ peer: w, command: what }, "a worker did not answer the admin console in time; left out");
      return noticeResponse(`worker ${w} did not answer within ${PEER_ANSWER_TIMEOUT_MS} ms: ${what} leaves it out`, "01000", "WARNING");
    });
  }

  /** Every worker's table of `target`, merged, and a NOTICE per worker left out. */
  private async merged(asking: Asking, target: ShowTarget, what: string): Promise<{ table: Table; notices: Buffer[] }> {
    const mine = SHOWS[target](this.env) as Table;
    const tables = [mine];
    const missing: number[] = [];
    for (const { worker, answer } of await asking.all({ kind: "show", target })) {
      if (answer?.kind === "table" && sameColumns(answer.table, mine)) tables.push(answer.table);
      else missing.push(worker);
    }
    return { table: mergeTables(target, tables), notices: this.leftOut(missing, what) };
  }

  private async show(asking: Asking, target: ShowTarget): Promise<Reply> {
    const { table, notices } = await this.merged(asking, target, `SHOW ${target.toUpperCase()}`);
    return { kind: "now", bytes: Buffer.concat([...notices, encodeTable(table)]) };
  }

  /** SHOW TOTALS sums the workers' merged SHOW STATS (its average times need each database's counts). */
  private async totals(asking: Asking): Promise<Reply> {
    const { table, notices } = await this.merged(asking, "stats", "SHOW TOTALS");
    return { kind: "now", bytes: Buffer.concat([...notices, encodeTable(totalsFromStats(table))]) };
  }

  /**
   * RELOAD or SET: applied here first (an error here is the answer, and nothing is sent: the siblings read the
   * same file); then by every sibling, answered once each has applied it. A sibling's error is the answer too.
   */
  private async applyEverywhere(asking: Asking, cmd: Extract<AdminCommand, { kind: "reload" | "set" }>, here: Promise<ReloadReply>): Promise<Reply> {
    const mine = await here;
    if (mine.kind === "error") return mine;
    const what = cmd.kind === "reload" ? "RELOAD" : `SET ${cmd.key}`;
    const missing: number[] = [];
    const failed: string[] = [];
    await Promise.all(
      (await asking.all(cmd)).map(async ({ worker, call, answer }) => {
        const end = answer?.kind === "waiting" ? await call.next(null) : answer;
        if (end === null) missing.push(worker);
        else if (end.kind === "error") failed.push(`worker ${worker}: ${end.message}`);
        else if (end.kind !== "done" && end.kind !== "ok") missing.push(worker);
      }),
    );
    if (failed.length > 0) return { kind: "error", code: "F0000", message: `${what} applied here but failed on ${failed.join("; ")}` };
    return { kind: "now", bytes: Buffer.concat([...this.leftOut(missing.sort(), what), mine.bytes]) };
  }

  /** Whether a sibling knows a database this worker does not (one served through "*" has a pool only where it was used). */
  private async knownBySibling(asking: Asking, db: string): Promise<boolean> {
    const answers = await asking.all({ kind: "show", target: "databases" });
    asking.closeAll();
    return answers.some(({ answer }) => answer?.kind === "table" && answer.table.rows.some((r) => r[0] === db));
  }

  /**
   * The arguments are checked here first (nothing is sent for an invalid command); then every worker applies it.
   * It succeeds if it succeeded on some worker (KILL_CLIENT: the one that has the client; PAUSE: any that was not
   * paused yet), else it fails with this worker's error. A wait is over when every worker's wait is.
   */
  private async control(asking: Asking, cmd: ControlCommand): Promise<Reply> {
    const { control } = this.env;
    const db = cmd.kind === "kill_client" ? null : cmd.db;
    const unknownHere = db !== null && !ADMIN_DATABASES.has(db) && !control.knownDatabase(db);
    const invalid = checkControl(this.env, cmd, unknownHere && (await this.knownBySibling(asking, db)));
    if (invalid) return error(invalid);
    const here = applyControl(control, cmd);
    const tag = controlTag(cmd);
    if (cmd.kind === "kill_client" && here === null) return done(tag); // ids are unique: no other worker has it
    const until = waitCondition(control, cmd);
    const answers = await asking.all(cmd);
    const succeeded = (a: PeerAnswer | null) => a?.kind === "ok" || (a?.kind === "waiting" && a.error === null);
    if (here !== null && !answers.some((a) => succeeded(a.answer))) return error(here);
    const missing = answers.filter((a) => a.answer === null).map((a) => a.worker);
    if (until) {
      const waits: Promise<unknown>[] = [new Promise<void>((resolve) => control.whenDone(asking, until, resolve))];
      for (const { worker, call, answer } of answers) {
        if (answer?.kind !== "waiting") continue;
        waits.push(
          call.next(null).then((end) => {
            if (end?.kind !== "done") this.env.api.log.warn({ peer: worker, command: tag }, "a worker went away while the admin console waited for it");
          }),
        );
      }
      await Promise.all(waits);
    }
    return { kind: "now", bytes: Buffer.concat([...this.leftOut(missing, tag), commandComplete(tag)]) };
  }

  /** A sibling's request: this worker's SHOW table, or the control command applied here (its arguments were checked by the asker). */
  private serve(cmd: AdminCommand, reply: PeerReply): void {
    if (cmd.kind === "show") {
      const out = SHOWS[cmd.target](this.env);
      reply.send(Buffer.isBuffer(out) ? { kind: "error", message: `SHOW ${cmd.target} is not a table` } : { kind: "table", table: out });
      return reply.end();
    }
    if (cmd.kind === "reload" || cmd.kind === "set") {
      this.env.api.log.info({ command: cmd.kind === "set" ? `SET ${cmd.key}` : "RELOAD" }, "admin console command from a sibling worker");
      // answered at once (the asker's timeout is for a stuck worker), then once applied: a reload may take a while
      reply.send({ kind: "waiting", error: null });
      const applied = cmd.kind === "reload" ? reloadHere(this.env.api) : Promise.resolve(setHere(this.env.api, cmd.key, cmd.value));
      void applied.then((r) => {
        reply.send(r.kind === "error" ? { kind: "error", message: r.message } : { kind: "done" });
        reply.end();
      });
      return;
    }
    if (!isControl(cmd)) {
      reply.send({ kind: "error", message: `${cmd.kind} is not sent between workers` });
      return reply.end();
    }
    this.env.api.log.info({ command: cmd }, "admin console command from a sibling worker");
    const { control } = this.env;
    const err = applyControl(control, cmd);
    const until = waitCondition(control, cmd);
    if (!until) {
      reply.send(err === null ? { kind: "ok" } : { kind: "error", message: err });
      return reply.end();
    }
    reply.send({ kind: "waiting", error: err });
    control.whenDone(reply, until, () => {
      reply.send({ kind: "done" });
      reply.end();
    });
  }
}
