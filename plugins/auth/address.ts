// IP addresses and masks of an HBA line as 16 bytes (IPv4 as ::ffff:a.b.c.d), and the match of a client's address.
import { isIPv4, isIPv6 } from "node:net";

/** An address or mask as 16 bytes; IPv4 ones are IPv4-mapped IPv6 (::ffff:a.b.c.d), as PostgreSQL compares them. */
export type IpBytes = Uint8Array;

const V4_MAPPED_PREFIX = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

function v4Bytes(text: string, out: Uint8Array, at: number): void {
  const parts = text.split(".");
  for (let i = 0; i < 4; i++) out[at + i] = Number(parts[i]);
}

/**
 * The 16 bytes of a numeric IPv4 or IPv6 address, or null when `text` is none (host names, zone ids, IPv4
 * shorthand such as 127.1). `family` 4 for dotted quads, 6 otherwise (an IPv4-mapped IPv6 address is 6).
 */
export function parseIp(text: string): { family: 4 | 6; bytes: IpBytes } | null {
  const out = new Uint8Array(16);
  if (isIPv4(text)) {
    out.set(V4_MAPPED_PREFIX);
    v4Bytes(text, out, 12);
    return { family: 4, bytes: out };
  }
  if (!isIPv6(text) || text.includes("%")) return null;
  // a trailing dotted quad (::ffff:10.0.0.1) spells the last two groups
  let groups = text;
  const lastColon = text.lastIndexOf(":");
  const tail = text.slice(lastColon + 1);
  if (tail.includes(".")) {
    const q = new Uint8Array(4);
    v4Bytes(tail, q, 0);
    groups = `${text.slice(0, lastColon + 1)}${((q[0]! << 8) | q[1]!).toString(16)}:${((q[2]! << 8) | q[3]!).toString(16)}`;
  }
  const [head, rest] = groups.split("::") as [string, string | undefined];
  const left = head === "" ? [] : head.split(":");
  const right = rest === undefined || rest === "" ? [] : rest.split(":");
  const fill = 8 - left.length - right.length;
  const all = rest === undefined ? left : [...left, ...Array<string>(fill).fill("0"), ...right];
  if (all.length !== 8) return null;
  for (let i = 0; i < 8; i++) {
    const v = parseInt(all[i]!, 16);
    out[2 * i] = v >> 8;
    out[2 * i + 1] = v & 0xff;
  }
  return { family: 6, bytes: out };
}

/** The mask of a CIDR prefix length (0-32 for IPv4, counted in the last 32 bits; 0-128 for IPv6), or null. */
export function prefixMask(bits: string, family: 4 | 6): IpBytes | null {
  if (!/^\d{1,3}$/.test(bits)) return null;
  const n = Number(bits);
  const max = family === 4 ? 32 : 128;
  if (n > max) return null;
  const mask = new Uint8Array(16);
  // an IPv4 rule matches IPv4(-mapped) clients only: the 96 bits of the mapped prefix are always compared
  const total = family === 4 ? 96 + n : n;
  for (let i = 0; i < 16; i++) {
    const left = total - 8 * i;
    mask[i] = left >= 8 ? 0xff : left <= 0 ? 0 : (0xff << (8 - left)) & 0xff;
  }
  return mask;
}

/** A mask written as an address (`255.255.255.0`), of the address's family; null if it is none or of the other family. */
export function addressMask(text: string, family: 4 | 6): IpBytes | null {
  const m = parseIp(text);
  if (m === null || m.family !== family) return null;
  if (family === 4) m.bytes.fill(0xff, 0, 12); // compare the mapped prefix too
  return m.bytes;
}

/** (client & mask) == (rule & mask), over 16 bytes. */
export function ipMatches(client: IpBytes, rule: IpBytes, mask: IpBytes): boolean {
  for (let i = 0; i < 16; i++) if (((client[i]! ^ rule[i]!) & mask[i]!) !== 0) return false;
  return true;
}
