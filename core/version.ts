// pgbun's version, read once from package.json (for --version, SHOW VERSION and logs).
import { readFileSync } from "node:fs";
import { join } from "node:path";

export const VERSION: string = (JSON.parse(readFileSync(join(import.meta.dir, "..", "package.json"), "utf8")) as { version: string }).version;
