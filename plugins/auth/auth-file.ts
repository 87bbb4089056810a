// PgBouncer's auth_file (userlist.txt): `"user" "secret"` lines, secrets plaintext, md5 or SCRAM-SHA-256.

/** A user's secret as the auth file gives it. */
export type Secret =
  | { kind: "plain"; password: string }
  | { kind: "md5"; hash: string }
  | { kind: "scram"; iterations: number; salt: Buffer; storedKey: Buffer; serverKey: Buffer };

const MD5_SECRET = /^md5[0-9a-f]{32}$/;
const SCRAM_SECRET = /^SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$/;

/** What a secret string is; a malformed SCRAM or md5 secret is taken as the plaintext password it spells (as PgBouncer). */
export function parseSecret(text: string): Secret {
  if (MD5_SECRET.test(text)) return { kind: "md5", hash: text };
  const m = SCRAM_SECRET.exec(text);
  if (m) {
    const iterations = Number(m[1]);
    const storedKey = Buffer.from(m[3]!, "base64");
    const serverKey = Buffer.from(m[4]!, "base64");
    if (iterations > 0 && storedKey.length === 32 && serverKey.length === 32) {
      return { kind: "scram", iterations, salt: Buffer.from(m[2]!, "base64"), storedKey, serverKey };
    }
  }
  return { kind: "plain", password: text };
}

/** Reads one double-quoted field from `line` at `pos` (`""` is a quote); null when there is none. */
function quoted(line: string, pos: number): { value: string; next: number } | null {
  while (pos < line.length && (line[pos] === " " || line[pos] === "\t")) pos++;
  if (line[pos] !== '"') return null;
  let value = "";
  for (let i = pos + 1; i < line.length; i++) {
    if (line[i] !== '"') value += line[i];
    else if (line[i + 1] === '"') {
      value += '"';
      i++;
    } else return { value, next: i + 1 };
  }
  return null; // unterminated
}

/**
 * Parses userlist.txt text into user → secret. Lines not starting with a quoted field (comments, blank) are
 * skipped, as PgBouncer does; a line with a user but no secret field is skipped too. Later lines win.
 */
export function parseAuthFile(text: string): Map<string, Secret> {
  const users = new Map<string, Secret>();
  for (const line of text.split(/\r?\n/)) {
    const user = quoted(line, 0);
    if (user === null || user.value === "") continue;
    const secret = quoted(line, user.next);
    if (secret === null) continue;
    users.set(user.value, parseSecret(secret.value));
  }
  return users;
}
