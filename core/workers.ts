// Multi-process mode: a supervisor runs N workers sharing the listen port (reusePort), forwards signals, restarts crashes.
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import type { Settings } from "./config/settings.ts";
import type { Logger } from "./logger.ts";

/** At most 16 workers: the worker index lives in the low (at most 4) bits of each cancel key's pid. */
export const MAX_WORKERS = 16;

export interface WorkerIdentity {
  /** 0-based index of this worker; 0 in single-process mode. */
  id: number;
  /** Number of workers; 1 in single-process mode. */
  count: number;
  /** The supervisor's pid (names the workers' private sockets). */
  supervisorPid: number;
}

/** Resolves `workers` (a number or "auto"). */
export function workerCount(s: Settings): number {
  const n = s.workers === "auto" ? availableParallelism() : s.workers;
  return Math.max(1, Math.min(MAX_WORKERS, n));
}

/** Who this process is: a worker started by a supervisor, or the only process. */
export function workerIdentity(): WorkerIdentity {
  const id = Number(process.env.PGBUN_WORKER_ID ?? "");
  const count = Number(process.env.PGBUN_WORKERS ?? "");
  const supervisorPid = Number(process.env.PGBUN_SUPERVISOR_PID ?? "");
  if (Number.isInteger(id) && Number.isInteger(count) && count > 1 && id >= 0 && id < count) return { id, count, supervisorPid };
  return { id: 0, count: 1, supervisorPid: process.pid };
}

/** The private Unix socket where worker `id` accepts CancelRequests forwarded by its siblings. */
export function workerSocketPath(supervisorPid: number, id: number): string {
  return join(tmpdir(), `pgbun-${supervisorPid}-w${id}.sock`);
}

export { perWorker } from "../plugin-sdk/plugin.ts";

/**
 * Runs `count` workers of this same command line and supervises them until they all exit.
 * SIGHUP/SIGTERM/SIGINT/SIGQUIT/SIGUSR1/SIGUSR2 are forwarded; a worker that dies is restarted unless stopping.
 */
export async function supervise(count: number, log: Logger): Promise<number> {
  const children = new Map<number, Subprocess>();
  let stopping = false;
  const start = (id: number) => {
    const child = Bun.spawn([process.execPath, ...process.argv.slice(1)], {
      env: { ...process.env, PGBUN_WORKER_ID: String(id), PGBUN_WORKERS: String(count), PGBUN_SUPERVISOR_PID: String(process.pid) },
      stdio: ["ignore", "inherit", "inherit"],
    });
    children.set(id, child);
    void child.exited.then((code) => {
      if (children.get(id) !== child) return;
      children.delete(id);
      if (!stopping) {
        log.error({ worker: id, code }, "worker exited; restarting it");
        setTimeout(() => start(id), 500);
      } else if (children.size === 0) done(0);
    });
  };
  let done!: (code: number) => void;
  const finished = new Promise<number>((r) => (done = r));
  for (let i = 0; i < count; i++) start(i);
  log.info({ workers: count }, "supervising workers");
  const forward = (signal: NodeJS.Signals, stop: boolean) => () => {
    if (stop) stopping = true;
    for (const c of children.values()) c.kill(signal);
    if (stop && children.size === 0) done(0);
  };
  process.on("SIGHUP", forward("SIGHUP", false));
  process.on("SIGUSR1", forward("SIGUSR1", false));
  process.on("SIGUSR2", forward("SIGUSR2", false));
  process.on("SIGTERM", forward("SIGTERM", true));
  process.on("SIGINT", forward("SIGINT", true));
  process.on("SIGQUIT", forward("SIGQUIT", true));
  return finished;
}
