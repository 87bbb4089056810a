// Starts bench/passthrough.ts or bench/minipool.ts as its own process in front of the benchmark's PostgreSQL and waits for its port.
import type { Subprocess } from "bun";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import type { TestPostgres } from "../tests/harness/postgres.ts";
import { killProcess, onCleanup, trackProcess } from "./processes.ts";

const REPO_ROOT = resolve(import.meta.dir, "..");

export interface PassthroughInstance {
  host: string;
  port: number;
  proc: Subprocess;
  /** What it wrote to stderr so far. */
  logs(): string;
}

function bunBinary(): string {
  const local = join(REPO_ROOT, "node_modules", ".bin", "bun");
  return existsSync(local) ? local : process.execPath;
}

/** The first line of stdout (the port), or null when the stream ends or `ms` pass first. */
async function firstLine(stream: ReadableStream<Uint8Array>, ms: number): Promise<string | null> {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let text = "";
  const timer = setTimeout(() => void reader.cancel(), ms);
  try {
    while (!text.includes("\n")) {
      const { done, value } = await reader.read();
      if (done) return null;
      text += decoder.decode(value, { stream: true });
    }
    return text.slice(0, text.indexOf("\n")).trim();
  } finally {
    clearTimeout(timer);
    reader.releaseLock();
  }
}

/** `wrap`: a command it runs under (valgrind for bench/instructions.ts). */
export function startPassthrough(pg: TestPostgres, wrap: string[] = []): Promise<PassthroughInstance> {
  return startReference("passthrough.ts", pg, [], wrap);
}

/** bench/minipool.ts, the least transaction pooler on Bun, with a pool of `poolSize` servers. */
export function startMinipool(pg: TestPostgres, poolSize: number, wrap: string[] = []): Promise<PassthroughInstance> {
  return startReference("minipool.ts", pg, [String(poolSize)], wrap);
}

async function startReference(script: string, pg: TestPostgres, extra: string[], wrap: string[]): Promise<PassthroughInstance> {
  const path = join(import.meta.dir, script);
  const proc = trackProcess(
    Bun.spawn([...wrap, bunBinary(), path, "0", pg.host, String(pg.port), ...extra], { cwd: REPO_ROOT, stdin: "ignore", stdout: "pipe", stderr: "pipe" }),
  );
  const errChunks: string[] = [];
  void (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of proc.stderr) errChunks.push(decoder.decode(chunk, { stream: true }));
  })().catch(() => undefined);
  const line = await firstLine(proc.stdout, wrap.length > 0 ? 120_000 : 30_000);
  const port = Number(line);
  if (!Number.isInteger(port) || port <= 0) {
    await killProcess(proc, "SIGKILL");
    throw new Error(`bench/${script} did not print its port (got ${JSON.stringify(line)}): ${errChunks.join("").slice(-1000)}`);
  }
  onCleanup(() => killProcess(proc, "SIGTERM"));
  return { host: "127.0.0.1", port, proc, logs: () => errChunks.join("") };
}
