// A git worktree of --baseline-rev in a temporary directory, for the before/after rows' pgbun; removed at cleanup.
import { existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, symlinkSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { onCleanup, trackProcess } from "./processes.ts";

const REPO_ROOT = resolve(import.meta.dir, "..");
/** What a checkout needs to run bin/pgbun.ts: identical in both means this checkout's node_modules serves both. */
const DEPENDENCY_FILES = ["package.json", "package-lock.json"];

export interface BaselineTree {
  /** The revision as given, and the commit it names (short). */
  rev: string;
  commit: string;
  /** How the rows name it: "de7f4e5", or "v0.1 (de7f4e5)" for a name that is not the commit. */
  label: string;
  dir: string;
  /** Absolute path of its bin/pgbun.ts. */
  entry: string;
  /** How it got its node_modules: "symlink" to this checkout's, or "npm ci". */
  modules: "symlink" | "npm ci";
}

async function run(cmd: string[], cwd: string): Promise<string> {
  const proc = trackProcess(Bun.spawn(cmd, { cwd, stdin: "ignore", stdout: "pipe", stderr: "pipe" }));
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`${cmd.join(" ")} failed (exit ${code}): ${(out + err).trim().slice(-1500)}`);
  return out;
}

/** The revision's copy of a file, or null when it has none. */
async function fileAt(commit: string, path: string): Promise<string | null> {
  try {
    return await run(["git", "show", `${commit}:${path}`], REPO_ROOT);
  } catch {
    return null;
  }
}

function readOr(file: string): string | null {
  return existsSync(file) ? readFileSync(file, "utf8") : null;
}

/**
 * Checks out `rev` (detached) into a new temporary directory with `git worktree add` and gives it node_modules: a
 * symlink to this checkout's when package.json and package-lock.json are the same in both (the installed packages
 * are then the ones it asks for), else its own `npm ci`. The worktree is removed (and pruned) at cleanup.
 */
export async function prepareBaselineTree(rev: string): Promise<BaselineTree> {
  const commit = (await run(["git", "rev-parse", "--short", `${rev}^{commit}`], REPO_ROOT)).trim();
  const parent = mkdtempSync(join(tmpdir(), "pgbun-bench-rev-"));
  const dir = join(parent, commit);
  onCleanup(async () => {
    // the link first, by itself: nothing below may walk into this checkout's node_modules
    if (existsSync(join(dir, "node_modules")) && lstatSync(join(dir, "node_modules")).isSymbolicLink()) unlinkSync(join(dir, "node_modules"));
    await run(["git", "worktree", "remove", "--force", dir], REPO_ROOT).catch((err: unknown) => console.error(`bench: ${String(err)}`));
    rmSync(parent, { recursive: true, force: true });
    await run(["git", "worktree", "prune"], REPO_ROOT).catch(() => undefined);
  });
  await run(["git", "worktree", "add", "--detach", "--quiet", dir, commit], REPO_ROOT);
  let same = true;
  for (const f of DEPENDENCY_FILES) if ((await fileAt(commit, f)) !== readOr(join(REPO_ROOT, f))) same = false;
  let modules: BaselineTree["modules"] = "symlink";
  if (same && existsSync(join(REPO_ROOT, "node_modules"))) symlinkSync(join(REPO_ROOT, "node_modules"), join(dir, "node_modules"), "dir");
  else {
    modules = "npm ci";
    await run(["npm", "ci", "--no-audit", "--no-fund"], dir);
  }
  const entry = join(dir, "bin", "pgbun.ts");
  if (!existsSync(entry)) throw new Error(`--baseline-rev ${rev}: ${commit} has no bin/pgbun.ts`);
  const label = commit.startsWith(rev) || rev.startsWith(commit) ? commit : `${rev} (${commit})`;
  return { rev, commit, label, dir, entry, modules };
}
