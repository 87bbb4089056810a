// Maps stack frames in compiled plugin bundles back to the plugin's sources through the bundle's inline source map.
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";

// Bun maps a stack frame through a file's own source map only for files marked `// @bun`, which would also skip
// its transpiler (no `require` or `__dirname` in the bundle then): pgbun maps the frames of plugin faults itself.

const INLINE_MAP = "//# sourceMappingURL=data:application/json;base64,";

interface SourceMap {
  /** Absolute paths. */
  sources: string[];
  /** Per generated line, its segments flat: generated column, source index, source line, source column (0-based). */
  lines: Int32Array[];
}

/** Bundle path → its map, decoded on the first fault that needs it (null: it has none, or an unreadable one). */
const bundles = new Map<string, SourceMap | null | undefined>();
/** Matches `<bundle path>:<line>:<column>` for every registered bundle; rebuilt when one is added. */
let framePattern: RegExp | null = null;

/** Makes the frames of a bundle (a path plugin compiled by esbuild with an inline source map) mappable. */
export function registerBundle(path: string): void {
  if (bundles.has(path)) return;
  bundles.set(path, undefined);
  framePattern = null;
}

/** The stack with each frame in a registered bundle replaced by the source file, line and column it came from. */
export function mapStack(stack: string): string {
  if (bundles.size === 0) return stack;
  framePattern ??= new RegExp(`(${[...bundles.keys()].map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|")}):(\\d+):(\\d+)`, "g");
  return stack.replace(framePattern, (frame: string, path: string, line: string, column: string) => {
    const map = mapOf(path);
    const at = map && originalPosition(map, Number(line), Number(column));
    return at ?? frame;
  });
}

function mapOf(path: string): SourceMap | null {
  let map = bundles.get(path);
  if (map === undefined) {
    map = readInlineMap(path);
    bundles.set(path, map);
  }
  return map;
}

function readInlineMap(path: string): SourceMap | null {
  try {
    const code = readFileSync(path, "utf8");
    const at = code.lastIndexOf(INLINE_MAP);
    if (at < 0) return null;
    const json = JSON.parse(Buffer.from(code.slice(at + INLINE_MAP.length).trim(), "base64").toString("utf8")) as {
      sources: string[];
      sourceRoot?: string;
      mappings: string;
    };
    const root = resolve(dirname(path), json.sourceRoot ?? "");
    return { sources: json.sources.map((s) => resolve(root, s)), lines: decodeMappings(json.mappings) };
  } catch {
    return null;
  }
}

/** `source:line:column` (1-based, as stack frames count) of a generated position, or null where nothing maps. */
function originalPosition(map: SourceMap, line: number, column: number): string | null {
  const segments = map.lines[line - 1];
  if (!segments || segments.length === 0) return null;
  // the last segment starting at or before the column; a column before the first segment belongs to the first
  let best = 0;
  for (let k = 4; k < segments.length && segments[k]! <= column - 1; k += 4) best = k;
  const source = map.sources[segments[best + 1]!];
  return source === undefined ? null : `${source}:${segments[best + 2]! + 1}:${segments[best + 3]! + 1}`;
}

const BASE64 = new Int8Array(128).fill(-1);
for (let i = 0; i < 64; i++) BASE64["ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".charCodeAt(i)] = i;

/**
 * Decodes source map v3 `mappings`: `;` separates generated lines, `,` segments, each segment is base64 VLQ
 * deltas (generated column within the line; source index, source line and source column across the whole map).
 */
export function decodeMappings(mappings: string): Int32Array[] {
  const lines: Int32Array[] = [];
  let line: number[] = [];
  const fields = [0, 0, 0, 0, 0];
  let count = 0;
  let value = 0;
  let shift = 0;
  let column = 0;
  let source = 0;
  let sourceLine = 0;
  let sourceColumn = 0;
  for (let i = 0; i <= mappings.length; i++) {
    const c = i < mappings.length ? mappings.charCodeAt(i) : 59; // the end closes the last line as a ';' would
    if (c === 44 /* , */ || c === 59 /* ; */) {
      if (count > 0) {
        column += fields[0]!;
        // a one-field segment maps nothing
        if (count >= 4) {
          source += fields[1]!;
          sourceLine += fields[2]!;
          sourceColumn += fields[3]!;
          line.push(column, source, sourceLine, sourceColumn);
        }
      }
      count = 0;
      if (c === 59) {
        lines.push(Int32Array.from(line));
        line = [];
        column = 0;
      }
      continue;
    }
    const digit = c < 128 ? BASE64[c]! : -1;
    if (digit < 0) throw new Error(`invalid character in source map mappings at ${i}`);
    value += (digit & 31) * 2 ** shift;
    if (digit & 32) {
      shift += 5;
      continue;
    }
    if (count < 5) fields[count++] = value % 2 === 1 ? -Math.floor(value / 2) : value / 2;
    value = 0;
    shift = 0;
  }
  return lines;
}
