// Tracks every process and resource the benchmark starts, and releases them on success, failure, Ctrl-C or SIGTERM.
import type { Subprocess } from "bun";

type Cleanup = () => Promise<void> | void;

const cleanups: Cleanup[] = [];
const children = new Set<Subprocess>();
let cleaning: Promise<void> | undefined;

/** Registers a release step (stop a server, remove a dir); steps run in reverse order of registration. */
export function onCleanup(fn: Cleanup): void {
  cleanups.push(fn);
}

/** Registers a child process: killed (by its pid) at cleanup if still running. Returns it for chaining. */
export function trackProcess<T extends Subprocess>(proc: T): T {
  children.add(proc);
  void proc.exited.then(() => children.delete(proc));
  return proc;
}

function isRunning(proc: Subprocess): boolean {
  return proc.exitCode === null && proc.signalCode === null;
}

/** Kills a child by its pid and waits for it, with SIGKILL after `graceMs`. */
export async function killProcess(proc: Subprocess, signal: NodeJS.Signals = "SIGTERM", graceMs = 3_000): Promise<void> {
  if (!isRunning(proc)) return;
  proc.kill(signal);
  const timer = setTimeout(() => proc.kill("SIGKILL"), graceMs);
  await proc.exited;
  clearTimeout(timer);
}

/** Runs every release step once (later calls share the first); never throws. */
export function cleanupAll(): Promise<void> {
  cleaning ??= (async () => {
    await Promise.all([...children].map((p) => killProcess(p).catch(() => undefined)));
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch (err) {
        console.error(`bench: cleanup step failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  })();
  return cleaning;
}

/** Ctrl-C and SIGTERM clean up then exit; a plain exit kills what is still running (synchronously). */
export function installSignalHandlers(): void {
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(sig, () => {
      console.error(`\nbench: ${sig}: stopping everything it started`);
      void cleanupAll().then(() => process.exit(128 + (sig === "SIGINT" ? 2 : sig === "SIGTERM" ? 15 : 1)));
    });
  }
  process.on("exit", () => {
    for (const proc of children) if (isRunning(proc)) proc.kill("SIGKILL");
  });
}
