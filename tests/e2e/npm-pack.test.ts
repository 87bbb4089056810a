// End to end, as a plugin author and a user go: the SDK and pgbun packed with npm pack, a project on both tarballs,
// a scaffolded plugin built, packed, installed by tarball and loaded by package name, serving a query.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { cpSync, existsSync, lstatSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { basename, join, relative, resolve, sep } from "node:path";
import { SDK_API_VERSION } from "../../plugin-sdk/index.ts";
import { pgConnect, usePostgres } from "../harness/fixtures.ts";
import { freePort, waitForPort } from "../harness/pgbun.ts";
import { harnessTempDir, trackChildProcess } from "../harness/postgres.ts";

// npm installs and two TypeScript builds: each step gets minutes on a loaded machine, the whole file about 30 s idle
setDefaultTimeout(180_000);

const REPO = resolve(import.meta.dir, "..", "..");
const VERSION = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")).version as string;
const NPM_INSTALL = ["npm", "install", "--prefer-offline", "--no-audit", "--no-fund"];
/** `--`: npx would take pgbun's --version and -c for its own. */
const NPX_PGBUN = ["npx", "--no", "--", "pgbun"];

const pg = usePostgres();

/**
 * The environment of every command: ours without PGBUN_* (they would override configs) and without the npm_*
 * variables `npm test` sets (a parent npm's config and lifecycle must not leak into these installs).
 */
function childEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("PGBUN_") && !/^npm_/i.test(k)) env[k] = v;
  return { ...env, ...extra };
}

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

async function sh(cwd: string, argv: string[], env: Record<string, string> = {}): Promise<Ran> {
  const proc = Bun.spawn(argv, { cwd, env: childEnv(env), stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

/** Runs a command that must succeed; its output is in the error when it does not. */
async function ok(cwd: string, argv: string[], env: Record<string, string> = {}): Promise<string> {
  const started = Date.now();
  const r = await sh(cwd, argv, env);
  if (r.code !== 0) throw new Error(`${argv.join(" ")} (in ${cwd}) exited with ${r.code}:\n${r.stdout}\n${r.stderr}`);
  if (argv[0] !== "tar") steps.push(`${basename(cwd)}: ${argv.filter((a) => !a.startsWith("/") && a !== "--").slice(0, 4).join(" ")} ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return r.stdout + r.stderr;
}

/** The paths in a tarball, without npm's `package/` prefix. */
async function tarball(file: string): Promise<string[]> {
  const out = await ok(REPO, ["tar", "-tzf", file]);
  return out.split("\n").filter((l) => l !== "").map((l) => l.replace(/^package\//, ""));
}

async function tarFile(file: string, path: string): Promise<string> {
  return ok(REPO, ["tar", "-xOzf", file, `package/${path}`]);
}

function editJson(file: string, edit: (json: Record<string, any>) => void): void {
  const json = JSON.parse(readFileSync(file, "utf8"));
  edit(json);
  writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
}

/** How long each command took, printed at the end (the lead watches this test's share of `npm test`). */
const steps: string[] = [];
const state = {} as { root: string; sdkTgz: string; pgbunTgz: string; project: string; plugin: string; pluginTgz: string };

afterAll(() => {
  console.log(`npm-pack e2e steps:\n  ${steps.join("\n  ")}`);
  // two installs of Bun and TypeScript: give the space back now, not when the test process ends
  if (state.root) rmSync(state.root, { recursive: true, force: true });
});

describe("from npm pack to a plugin loaded by package name", () => {
  test("the SDK packs after its prepack build: ES modules and declarations only, which import .js", async () => {
    state.root = await harnessTempDir("npm-pack");
    // a copy of plugin-sdk/ built on its own (so concurrent runs do not share a dist/), with the repo's tools
    const build = join(state.root, "build");
    const sdk = join(REPO, "plugin-sdk");
    cpSync(sdk, join(build, "sdk"), { recursive: true, filter: (src) => relative(sdk, src).split(sep)[0] !== "dist" });
    symlinkSync(join(REPO, "node_modules"), join(build, "node_modules"));
    await ok(join(build, "sdk"), ["npm", "pack", "--pack-destination", state.root]);
    state.sdkTgz = join(state.root, `pgbun-plugin-sdk-${SDK_API_VERSION}.tgz`);

    const files = await tarball(state.sdkTgz);
    for (const f of ["package.json", "README.md", "dist/index.js", "dist/index.d.ts", "dist/testing.js", "dist/testing.d.ts"]) expect(files).toContain(f);
    expect(files.filter((f) => !/^(package\.json|README\.md|dist\/.+\.(js|js\.map|d\.ts))$/.test(f))).toEqual([]);
    expect(await tarFile(state.sdkTgz, "dist/index.d.ts")).not.toMatch(/from "\.{1,2}\/[^"]+\.ts"/);
    const pkg = JSON.parse(await tarFile(state.sdkTgz, "package.json"));
    expect(Object.keys(pkg.dependencies)).toEqual(["tapable"]);
  });

  test("pgbun packs with its examples and the SDK's sources, not a dist/", async () => {
    await ok(REPO, ["npm", "pack", "--pack-destination", state.root]);
    state.pgbunTgz = join(state.root, `pgbun-${VERSION}.tgz`);
    const files = await tarball(state.pgbunTgz);
    for (const f of ["bin/pgbun", "bin/pgbun.ts", "bin/plugin-init.ts", "plugin-sdk/index.ts", "bin/testing.ts", "examples/audit-log.ts"]) expect(files).toContain(f);
    expect(files.filter((f) => f.startsWith("plugin-sdk/dist/") || f.startsWith("tests/"))).toEqual([]);
  });

  test("a project installs both tarballs, and npx pgbun runs", async () => {
    state.project = join(state.root, "project");
    mkdirSync(state.project);
    writeFileSync(
      join(state.project, "package.json"),
      JSON.stringify({ name: "e2e-project", private: true, type: "module", dependencies: { "@pgbun/plugin-sdk": `file:${state.sdkTgz}`, pgbun: `file:${state.pgbunTgz}` } }),
    );
    await ok(state.project, NPM_INSTALL);
    expect((await ok(state.project, [...NPX_PGBUN, "--version"])).trim()).toBe(VERSION);
  });

  test("npx pgbun plugin init demo: installed against the SDK tarball it type-checks with a plain tsconfig, and its tests pass", async () => {
    await ok(state.project, [...NPX_PGBUN, "plugin", "init", "demo"]);
    state.plugin = join(state.project, "pgbun-plugin-demo");
    editJson(join(state.plugin, "package.json"), (p) => {
      p.dependencies["@pgbun/plugin-sdk"] = `file:${state.sdkTgz}`;
      p.devDependencies.pgbun = `file:${state.pgbunTgz}`;
    });
    await ok(state.plugin, NPM_INSTALL);
    await ok(state.plugin, ["npm", "run", "typecheck"]);
    // as root initdb will not run: the PostgreSQL test uses this file's instead
    const upstream = `postgres://postgres:${encodeURIComponent(pg.password)}@${pg.host}:${pg.port}`;
    const out = await ok(state.plugin, ["npm", "test"], { PGBUN_TEST_UPSTREAM: upstream });
    expect(out).toContain("(pass) pgbun-plugin-demo > SHOW demo goes to the server as a SELECT of the greeting");
    expect(out).toContain("(pass) pgbun-plugin-demo in pgbun, against PostgreSQL > SHOW demo through pgbun answers the greeting");
    expect(out).not.toContain("(skip)");
  });

  test("the plugin builds and packs to one ES module, and installs into the project from its tarball", async () => {
    await ok(state.plugin, ["npm", "pack", "--pack-destination", state.root]);
    state.pluginTgz = join(state.root, "pgbun-plugin-demo-0.1.0.tgz");
    expect((await tarball(state.pluginTgz)).sort()).toEqual(["README.md", "dist/index.js", "dist/index.js.map", "package.json"]);
    await ok(state.project, [...NPM_INSTALL, state.pluginTgz]);
    const installed = join(state.project, "node_modules", "pgbun-plugin-demo");
    expect(lstatSync(installed).isSymbolicLink()).toBe(false);
    // the SDK stays an import, resolved from the project (where the loader's version check sees its stamp)
    expect(readFileSync(join(installed, "dist", "index.js"), "utf8")).toContain(`from "@pgbun/plugin-sdk"`);
    expect(existsSync(join(state.project, "node_modules", "@pgbun", "plugin-sdk", "dist", "index.js"))).toBe(true);
  });

  test("pgbun start loads it by package name and it answers through PostgreSQL; npx pgbun plugins lists it", async () => {
    const port = await freePort();
    writeFileSync(
      join(state.project, "pgbun.json"),
      JSON.stringify({
        pgbun: { listen_addr: "127.0.0.1", listen_port: port, log_format: "json", plugins: [["pgbun-plugin-demo", { greeting: "hello from the tarball" }]] },
        databases: { "*": { host: pg.host, port: pg.port, password: pg.password } },
      }),
    );

    const listing = await ok(state.project, [...NPX_PGBUN, "plugins", "-c", "pgbun.json"]);
    const block = listing.split("\n\n").find((b) => /^\d+\. pgbun-plugin-demo$/m.test(b));
    expect(block?.trim().split("\n").map((l) => l.trim()).slice(1)).toEqual([
      "specifier: pgbun-plugin-demo",
      "provides:  -",
      `options:   {"greeting":"hello from the tarball"}`,
      "taps:      clientMessage:Query",
    ]);

    // node_modules/.bin/pgbun is what npx runs; started directly so SIGTERM reaches pgbun (npm exec does not pass it on)
    const proc = Bun.spawn([join(state.project, "node_modules", ".bin", "pgbun"), "start", "-c", "pgbun.json"], {
      cwd: state.project,
      env: childEnv(),
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    trackChildProcess(state.root, proc);
    const logs = Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    try {
      await Promise.race([waitForPort("127.0.0.1", port, 30_000), proc.exited.then(async () => Promise.reject(new Error(`pgbun exited:\n${(await logs).join("")}`)))]);
      const c = await pgConnect({ host: "127.0.0.1", port }, { password: pg.password });
      try {
        expect((await c.query("SHOW demo")).rows).toEqual([{ demo: "hello from the tarball" }]);
        expect((await c.query("SELECT current_database() AS db")).rows).toEqual([{ db: "app" }]);
      } finally {
        await c.end();
      }
    } finally {
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 5_000);
      await proc.exited;
      clearTimeout(timer);
    }
    expect((await logs).join("")).toMatch(/"plugins":\[[^\]]*"pgbun-plugin-demo"[^\]]*\],"msg":"pgbun listening"/);
  });
});
