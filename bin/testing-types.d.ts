// The types of pgbun/testing (package.json "types") as a plugin's own tests see them (bin/testing.ts is TypeScript source that Bun runs).

export interface TestPoolerOptions {
  /** The PostgreSQL every database is forwarded to (unless `databases` says otherwise). */
  upstream: { host: string; port: number; password?: string; user?: string };
  /** Settings by PgBouncer's names, as in the [pgbun] section. */
  settings?: Record<string, unknown>;
  /** Plugins in order: specifiers (a path, a package name, pgbun:NAME) or [specifier, options]. */
  plugins?: Array<string | [string, Record<string, unknown>]>;
  databases?: Record<string, unknown>;
  users?: Record<string, unknown>;
  /** Where relative plugin paths resolve from (default: the working directory). */
  dir?: string;
  logLevel?: string;
}

export interface TestPooler {
  /** The engine itself, for pgbun's own tests; a plugin's tests should not need it (it is not the plugin API). */
  readonly core: unknown;
  host: string;
  port: number;
  /** A postgres:// URL through the pooler. */
  url(database?: string, user?: string, password?: string): string;
  stop(): Promise<void>;
}

/** Starts pgbun on a free port with the built-in plugins and the given ones, in front of `upstream`. */
export declare function startTestPooler(opts: TestPoolerOptions): Promise<TestPooler>;
