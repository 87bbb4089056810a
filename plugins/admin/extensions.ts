// The console's AdminApi (capability "admin"): SHOW tables and commands other plugins add, kept by lower-case name.
import type { AdminApi, AdminRequest, AdminTable } from "../../plugin-sdk/index.ts";
import { BUILT_IN_KEYWORDS, SHOW_TARGETS } from "./commands.ts";

export interface AddedShow {
  /** As the plugin wrote it, for SHOW HELP. */
  readonly name: string;
  readonly doc: string;
  readonly table: (req: AdminRequest) => AdminTable | Promise<AdminTable>;
}

export interface AddedCommand {
  readonly keyword: string;
  readonly doc: string;
  readonly readOnly: boolean;
  readonly run: (req: AdminRequest) => string | AdminTable | Promise<string | AdminTable>;
}

/** A name the console's grammar can read back as one word (SHOW <name>, <keyword> args). */
const WORD = /^[A-Za-z_][A-Za-z0-9_]*$/;

function checkedName(what: string, name: unknown): string {
  if (typeof name !== "string" || !WORD.test(name)) throw new Error(`admin console: ${what} ${JSON.stringify(name)} is not a word (letters, digits, _)`);
  return name.toLowerCase();
}

export class Extensions {
  readonly shows = new Map<string, AddedShow>();
  readonly commands = new Map<string, AddedCommand>();

  /** What pgbun:admin offers other plugins; its methods work unbound (`const { addShow } = admin`). */
  readonly api: AdminApi = {
    addShow: (name, table, options) => {
      const key = checkedName("SHOW name", name);
      if ((SHOW_TARGETS as readonly string[]).includes(key)) throw new Error(`admin console: SHOW ${name.toUpperCase()} is built in; choose another name`);
      if (this.shows.has(key)) throw new Error(`admin console: SHOW ${name.toUpperCase()} was added already (by a plugin); choose another name`);
      if (typeof table !== "function") throw new Error(`admin console: SHOW ${name.toUpperCase()} needs a function that builds its table`);
      this.shows.set(key, { name, doc: options?.doc ?? "", table });
    },
    addCommand: (keyword, run, options) => {
      const key = checkedName("command", keyword);
      if (BUILT_IN_KEYWORDS.has(key)) throw new Error(`admin console: ${keyword.toUpperCase()} is a built-in command; choose another keyword`);
      if (this.commands.has(key)) throw new Error(`admin console: ${keyword.toUpperCase()} was added already (by a plugin); choose another keyword`);
      if (typeof run !== "function") throw new Error(`admin console: ${keyword.toUpperCase()} needs a function that runs it`);
      this.commands.set(key, { keyword, doc: options?.doc ?? "", readOnly: options?.readOnly === true, run });
    },
  };
}
