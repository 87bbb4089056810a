// The client Unix socket PgBouncer makes: <unix_socket_dir>/.s.PGSQL.<listen_port>, its mode and group, a stale file replaced.
import type { SocketHandler, UnixSocketListener } from "bun";
import { chmodSync, chownSync, lstatSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";

/** The path libpq derives from a host directory and a port, so `psql -h <dir> -p <port>` finds pgbun. */
export function unixSocketPath(dir: string, port: number): string {
  return join(dir, `.s.PGSQL.${port}`);
}

/** How long a probe of an existing socket file may take before the file is taken as stale. */
const PROBE_MS = 1_000;

/** Resolves once it is known whether something accepts connections on `path`. */
async function someoneListens(path: string): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const probe = Bun.connect({ unix: path, socket: { data() {}, open(s) { s.end(); } } }).then(
    () => true,
    () => false,
  );
  const timeout = new Promise<boolean>((done) => (timer = setTimeout(() => done(false), PROBE_MS)));
  try {
    return await Promise.race([probe, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Makes room for the socket: a socket file nobody answers on is what a killed pgbun (or PgBouncer) left and is
 * removed, as PgBouncer does; a live one belongs to another process (two poolers on one port with so_reuseport
 * need a unix_socket_dir each) and anything that is not a socket is no leftover of ours: both refuse the start.
 */
async function clearStale(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  if (!isSocket) throw new Error(`${path} exists and is not a socket; refusing to replace it (remove it, or set another unix_socket_dir)`);
  if (await someoneListens(path)) {
    throw new Error(`another process is listening on ${path} (a pooler per port and unix_socket_dir; with so_reuseport give each its own unix_socket_dir)`);
  }
  rmSync(path, { force: true });
}

/** A group name from /etc/group, or a numeric gid, as a gid. */
export function resolveGroup(group: string): number {
  if (/^\d+$/.test(group)) return Number(group);
  let lines: string[] = [];
  try {
    lines = readFileSync("/etc/group", "utf8").split("\n");
  } catch {
    // no /etc/group: only numeric gids can be named
  }
  for (const line of lines) {
    const [name, , gid] = line.split(":");
    if (name === group && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  throw new Error(`unix_socket_group ${JSON.stringify(group)}: no such group`);
}

export interface UnixListenOptions {
  /** unix_socket_mode: permission bits given to the socket file. */
  mode: number;
  /** unix_socket_group: "" keeps the group the file was made with. */
  group: string;
}

/**
 * Listens on `path` with `handlers`, then sets the mode and group. Before the chmod the file has the umask's mode;
 * connecting needs write permission, which a usual umask (022, 077) gives nobody but the owner. Bun removes the
 * file when the listener is stopped.
 */
export async function listenUnix<T>(path: string, handlers: SocketHandler<T>, opts: UnixListenOptions): Promise<UnixSocketListener<T>> {
  const gid = opts.group === "" ? -1 : resolveGroup(opts.group);
  await clearStale(path);
  const listener = Bun.listen<T>({ unix: path, socket: handlers });
  try {
    if (gid !== -1) chownSync(path, -1, gid);
    chmodSync(path, opts.mode);
  } catch (err) {
    listener.stop(true);
    throw new Error(`${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
  return listener;
}
