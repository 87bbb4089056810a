// workers > 1: each sibling serves its snapshot over HTTP on a private Unix socket; worker 0 gathers and sums them.
import type { Server } from "bun";
import { chmodSync, rmSync } from "node:fs";
import type { WorkerInfo } from "../../plugin-sdk/index.ts";
import { checkSnapshot, mergeSnapshots, type Snapshot } from "./snapshot.ts";

/** A sibling that has not answered within this time is left out of the scrape (listed as missing). */
export const PEER_TIMEOUT_MS = 1_000;
/** A snapshot holds every pool of a worker: generous, but bounded. */
const MAX_SNAPSHOT_BYTES = 16 << 20;

/** The socket where worker `id` serves its snapshot (next to the core's, as the console's peer socket is). */
export function metricsPeerPath(worker: WorkerInfo, id: number): string {
  return `${worker.socketPath(id)}.metrics`;
}

/** Serves `take()` as JSON at any path of a Unix socket only this user may connect to. */
export function serveSnapshot(path: string, take: () => Snapshot): Server<undefined> {
  rmSync(path, { force: true });
  const umask = process.umask(0o077);
  try {
    return Bun.serve({ unix: path, fetch: () => Response.json(take()) });
  } finally {
    process.umask(umask);
    try {
      chmodSync(path, 0o600);
    } catch {
      // serving failed: the error is Bun.serve's
    }
  }
}

/** One sibling's snapshot, or null when it did not answer in time or sent something that is not one. */
async function askPeer(path: string): Promise<Snapshot | null> {
  try {
    const r = await fetch("http://pgbun-worker/snapshot", { unix: path, signal: AbortSignal.timeout(PEER_TIMEOUT_MS) });
    if (!r.ok) return null;
    const text = await r.text();
    if (text.length > MAX_SNAPSHOT_BYTES) return null;
    return checkSnapshot(JSON.parse(text));
  } catch {
    return null;
  }
}

/** This worker's snapshot summed with every sibling's that answered; those that did not are named in `missing`. */
export async function gather(worker: WorkerInfo, mine: Snapshot): Promise<Snapshot> {
  if (worker.count <= 1) return mine;
  const ids: number[] = [];
  for (let id = 0; id < worker.count; id++) if (id !== worker.id) ids.push(id);
  const answers = await Promise.all(ids.map((id) => askPeer(metricsPeerPath(worker, id))));
  const parts = [mine];
  const missing: number[] = [];
  answers.forEach((a, i) => (a ? parts.push(a) : missing.push(ids[i]!)));
  return mergeSnapshots(parts, missing);
}
