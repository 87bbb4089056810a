// Measures a pooler's resident memory (VmRSS) before and after it holds N idle, logged-in client connections.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { killProcess, trackProcess } from "./processes.ts";

const CONNECTOR = resolve(import.meta.dir, "idle-connector.ts");
const BUN = resolve(import.meta.dir, "..", "node_modules", ".bin", "bun");

export interface MemoryResult {
  ok: boolean;
  error?: string;
  requested: number;
  /** Named statements each client prepared after login (extended protocol) before idling; 0: login only. */
  prepared: number;
  opened: number;
  failed: number;
  rssBeforeKb: number;
  rssAfterKb: number;
  /** (after - before) / opened, in bytes. */
  perClientBytes: number | null;
}

export function rssKb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const m = /^VmRSS:\s+(\d+) kB/m.exec(status);
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

interface Connector {
  report: { ready: number; failed: number; errors: string[] } | null;
  stop(): Promise<void>;
}

/** Runs the idle connector in its own process (its own fd budget) and waits for its one-line report. */
async function openIdle(
  target: { host: string; port: number; user: string; database: string },
  count: number,
  prepared: number,
  timeoutMs: number,
): Promise<Connector> {
  const mode = prepared > 0 ? [`--prepare=${prepared}`] : [];
  const args = [target.host, String(target.port), String(count), target.user, target.database, "200"];
  const proc = trackProcess(Bun.spawn([BUN, CONNECTOR, ...mode, ...args], { stdin: "ignore", stdout: "pipe", stderr: "pipe" }));
  const reader = proc.stdout.getReader();
  const decoder = new TextDecoder();
  let text = "";
  const deadline = Date.now() + timeoutMs;
  let report: Connector["report"] = null;
  while (!text.includes("\n") && Date.now() < deadline) {
    const chunk = await Promise.race([reader.read(), Bun.sleep(Math.max(1, deadline - Date.now())).then(() => null)]);
    if (!chunk || chunk.done) break;
    text += decoder.decode(chunk.value, { stream: true });
  }
  const line = text.split("\n")[0] ?? "";
  try {
    report = JSON.parse(line) as Connector["report"];
  } catch {
    const stderr = proc.exitCode !== null ? await new Response(proc.stderr).text() : "";
    report = { ready: 0, failed: count, errors: [`connector gave no report within ${timeoutMs} ms ${stderr.slice(0, 300)}`] };
  }
  reader.releaseLock();
  return { report, stop: () => killProcess(proc, "SIGTERM") };
}

/**
 * RSS of `pid` after a warm-up of 5 clients doing what the measured ones do (so the server connections and code
 * paths exist), then with `count` idle clients held open, each of which prepared `prepared` named statements after
 * its login (0: login only). The connections stay open only while measuring. Give each kind a fresh pooler: one
 * that served the other kind's clients may not return their memory to the system, and then lends it to these.
 */
export async function measureIdleMemory(
  pid: number,
  target: { host: string; port: number; user: string; database: string },
  count: number,
  prepared = 0,
): Promise<MemoryResult> {
  const warm = await openIdle(target, 5, prepared, 30_000);
  await warm.stop();
  await Bun.sleep(1_500);
  const rssBeforeKb = rssKb(pid);
  const conn = await openIdle(target, count, prepared, 180_000);
  await Bun.sleep(2_000); // let buffers settle; RSS is read while every connection is still open
  const rssAfterKb = rssKb(pid);
  await conn.stop();
  const report = conn.report ?? { ready: 0, failed: count, errors: ["no report"] };
  const result: MemoryResult = {
    ok: report.ready === count,
    requested: count,
    prepared,
    opened: report.ready,
    failed: report.failed,
    rssBeforeKb,
    rssAfterKb,
    perClientBytes: report.ready > 0 ? ((rssAfterKb - rssBeforeKb) * 1024) / report.ready : null,
  };
  const what = prepared > 0 ? `clients (login, then ${prepared} prepared statements)` : "logins";
  if (!result.ok) result.error = `${report.failed} of ${count} ${what} failed: ${report.errors.join("; ")}`;
  if (warm.report && warm.report.ready !== 5) result.error = `${result.error ?? ""} warm-up: ${warm.report.errors.join("; ")}`.trim();
  return result;
}
