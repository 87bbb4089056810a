// bin/pgbun, the sh launcher: found through npm's node_modules/.bin symlink, it finds the package and a Bun to run it.
import { describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, mkdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { harnessTempDir } from "../harness/postgres.ts";

const REPO = resolve(import.meta.dir, "..", "..");
const VERSION = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")).version as string;
/** Enough for sh and the tools the launcher uses, and no bun. */
const PATH_WITHOUT_BUN = "/usr/bin:/bin";

async function run(cwd: string, argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn(argv, { cwd, env: { PATH: PATH_WITHOUT_BUN, HOME: cwd }, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

/** A project whose node_modules/.bin holds `bun`: a stand-in that prints what it was asked to run. */
function fakeBun(project: string): void {
  const bin = join(project, "node_modules", ".bin");
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, "bun"), `#!/bin/sh\necho "fake bun: $*"\n`);
  chmodSync(join(bin, "bun"), 0o755);
}

/** The launcher alone, copied to `<pkg>/bin/pgbun`, and the .bin symlink npm makes for it. */
function installLauncher(project: string, pkgPath: string): string {
  const pkg = join(project, "node_modules", pkgPath);
  mkdirSync(join(pkg, "bin"), { recursive: true });
  copyFileSync(join(REPO, "bin", "pgbun"), join(pkg, "bin", "pgbun"));
  chmodSync(join(pkg, "bin", "pgbun"), 0o755);
  mkdirSync(join(project, "node_modules", ".bin"), { recursive: true });
  symlinkSync(`../${pkgPath}/bin/pgbun`, join(project, "node_modules", ".bin", "pgbun"));
  return realpathSync(pkg);
}

describe("bin/pgbun", () => {
  test("the test's PATH really has no bun", () => {
    expect(Bun.which("bun", { PATH: PATH_WITHOUT_BUN })).toBeNull();
  });

  test("through node_modules/.bin/pgbun -> ../pgbun/bin/pgbun, with no bun on PATH, it runs on the package's own Bun", async () => {
    const project = await harnessTempDir("launcher");
    mkdirSync(join(project, "node_modules", ".bin"), { recursive: true });
    // as npm link or a workspace makes it: the package is a symlink to the repo, which has its own node_modules/.bin/bun
    symlinkSync(REPO, join(project, "node_modules", "pgbun"));
    symlinkSync("../pgbun/bin/pgbun", join(project, "node_modules", ".bin", "pgbun"));
    const r = await run(project, ["node_modules/.bin/pgbun", "--version"]);
    expect(r.stderr).toBe("");
    expect(r.stdout.trim()).toBe(VERSION);
    expect(r.code).toBe(0);
  });

  test("a hoisted install: the Bun of the node_modules the package sits in runs the package's bin/pgbun.ts", async () => {
    const project = await harnessTempDir("launcher");
    const pkg = installLauncher(project, "pgbun");
    fakeBun(project);
    const r = await run(project, ["node_modules/.bin/pgbun", "start", "-c", "x.toml"]);
    expect(r.stdout.trim()).toBe(`fake bun: ${join(pkg, "bin", "pgbun.ts")} start -c x.toml`);
    expect(r.code).toBe(0);
  });

  test("a scoped install: node_modules/@scope/pgbun finds node_modules/.bin/bun two levels up", async () => {
    const project = await harnessTempDir("launcher");
    const pkg = installLauncher(project, "@scope/pgbun");
    fakeBun(project);
    const r = await run(project, ["node_modules/.bin/pgbun", "--version"]);
    expect(r.stdout.trim()).toBe(`fake bun: ${join(pkg, "bin", "pgbun.ts")} --version`);
  });

  test("no Bun anywhere: a clear error and exit code 127", async () => {
    const project = await harnessTempDir("launcher");
    installLauncher(project, "pgbun");
    const r = await run(project, ["node_modules/.bin/pgbun", "--version"]);
    expect(r.code).toBe(127);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("pgbun needs Bun");
    expect(r.stderr).toContain("npm install bun");
  });
});
