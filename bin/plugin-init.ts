// `pgbun plugin init NAME`: writes ./pgbun-plugin-NAME/, a TypeScript plugin project on @pgbun/plugin-sdk.
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { SDK_API_VERSION } from "../plugin-sdk/plugin.ts";

const TEMPLATES = join(import.meta.dir, "templates", "plugin");
/** Template file → where it goes in the project (npm pack drops files named .gitignore: the template is not). */
const FILES: Readonly<Record<string, string>> = {
  "index.ts.tmpl": "src/index.ts",
  "hooks.test.ts.tmpl": "test/hooks.test.ts",
  "postgres.test.ts.tmpl": "test/postgres.test.ts",
  "tsconfig.json.tmpl": "tsconfig.json",
  "README.md.tmpl": "README.md",
  "gitignore.tmpl": ".gitignore",
};
export const PLUGIN_PREFIX = "pgbun-plugin-";
/** What npm accepts in a package name, lower case only; pgbun-plugin- is put in front. */
const NAME = /^[a-z0-9][a-z0-9._-]*$/;
const NPM_NAME_MAX = 214;

export class PluginInitError extends Error {
  override name = "PluginInitError";
}

interface PgbunPackage {
  version: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
}

/** The versions the project's tools are pinned to: those pgbun itself is built and tested with. */
function pgbunPackage(): PgbunPackage {
  return JSON.parse(readFileSync(join(import.meta.dir, "..", "package.json"), "utf8")) as PgbunPackage;
}

function pinned(pkg: PgbunPackage, name: string): string {
  const version = pkg.dependencies[name] ?? pkg.devDependencies[name];
  if (!version) throw new PluginInitError(`pgbun's package.json names no version of ${name}`);
  return version;
}

/** The project's package.json: the SDK as its only dependency, at this pgbun's plugin API major. */
function packageJson(packageName: string): string {
  const pgbun = pgbunPackage();
  const major = SDK_API_VERSION.split(".")[0];
  const pkg = {
    name: packageName,
    version: "0.1.0",
    description: "A pgbun plugin",
    type: "module",
    main: "./dist/index.js",
    exports: { ".": "./dist/index.js" },
    files: ["dist", "README.md"],
    keywords: ["pgbun", "pgbun-plugin"],
    scripts: {
      // one ES module; packages (the SDK) stay imports, resolved from the project that installs the plugin
      build: "esbuild src/index.ts --bundle --format=esm --platform=node --packages=external --sourcemap --outfile=dist/index.js",
      test: "bun test",
      typecheck: "tsc --noEmit",
      prepack: "npm run build",
    },
    dependencies: { "@pgbun/plugin-sdk": `^${major}.0.0` },
    devDependencies: {
      "@types/bun": pinned(pgbun, "@types/bun"),
      esbuild: pinned(pgbun, "esbuild"),
      pgbun: `^${pgbun.version}`,
      typescript: pinned(pgbun, "typescript"),
    },
  };
  return `${JSON.stringify(pkg, null, 2)}\n`;
}

/** Checks NAME (a `pgbun-plugin-` prefix is accepted and dropped); returns the bare name. */
export function pluginName(input: string): string {
  const name = input.startsWith(PLUGIN_PREFIX) ? input.slice(PLUGIN_PREFIX.length) : input;
  if (!NAME.test(name) || PLUGIN_PREFIX.length + name.length > NPM_NAME_MAX) {
    throw new PluginInitError(
      `invalid plugin name ${JSON.stringify(input)}: use lower-case letters, digits, "-", "_" and ".", starting with a letter or digit (the package is ${PLUGIN_PREFIX}NAME)`,
    );
  }
  return name;
}

export interface InitResult {
  /** The project directory, absolute. */
  dir: string;
  packageName: string;
  /** Files written, relative to dir. */
  files: string[];
}

/** Writes the project into `<cwd>/pgbun-plugin-NAME/`; refuses a directory that exists and is not empty. */
export function initPlugin(input: string, cwd: string): InitResult {
  const name = pluginName(input);
  const packageName = `${PLUGIN_PREFIX}${name}`;
  const dir = resolve(cwd, packageName);
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw new PluginInitError(`${relative(cwd, dir)} exists and is not a directory`);
    if (readdirSync(dir).length > 0) throw new PluginInitError(`${relative(cwd, dir)}/ exists and is not empty: nothing written`);
  }
  const contents: Record<string, string> = { "package.json": packageJson(packageName) };
  for (const [template, target] of Object.entries(FILES)) {
    contents[target] = readFileSync(join(TEMPLATES, template), "utf8").replaceAll("__PACKAGE__", packageName).replaceAll("__NAME__", name);
  }
  for (const [file, text] of Object.entries(contents)) {
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    writeFileSync(join(dir, file), text);
  }
  return { dir, packageName, files: Object.keys(contents).sort() };
}
