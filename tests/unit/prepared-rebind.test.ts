// Unit tests of pgbun:prepared-statements' rebind(): a Bind under another statement name, byte for byte, whichever
// way each part is copied (short parts by loops, long ones and non-ASCII names through the runtime).
import { expect, test } from "bun:test";
import { cstringEnd, decodeBind } from "../../plugin-sdk/index.ts";
import { rebind } from "../../plugins/prepared-statements/messages.ts";
import { msg } from "../harness/wire.ts";

/** rebind() of `bind` (placed at `offset` in a larger buffer, as a read buffer holds it) to `name`. */
function renamed(bind: Buffer, name: string, offset: number, plain = false): Buffer {
  const whole = Buffer.concat([Buffer.alloc(offset, 0x55), bind, Buffer.alloc(7, 0x66)]);
  const buf = plain ? new Uint8Array(whole) : whole;
  const start = offset;
  const end = offset + bind.length;
  const portalEnd = cstringEnd(buf, start + 5, end);
  const nameEnd = cstringEnd(buf, portalEnd + 1, end);
  return rebind(buf, start, end, portalEnd, nameEnd, name);
}

test("short and long portals, names and parameters, ASCII and not, in a Buffer or a plain Uint8Array: the Bind as if written so", () => {
  const long = "x".repeat(100);
  const cases: Array<{ portal: string; from: string; to: string; params: Array<string | null> }> = [
    { portal: "", from: "P0_1", to: "pgbun_12", params: ["12345"] },
    { portal: "", from: "s", to: "pgbun_1", params: [] },
    { portal: long, from: "s1", to: "pgbun_3", params: [long, null, "é"] },
    { portal: "p", from: "naïve", to: "naïve_unknown", params: ["1"] },
    { portal: "", from: "pgbun_7", to: "pgbun_7_unknown", params: [] },
    { portal: "", from: "s", to: "名前🙂", params: [long] },
    { portal: "", from: "", to: "pgbun_unnamed_gone", params: ["a", "b"] },
  ];
  for (const c of cases) {
    const want = msg.bind(c.portal, c.to, c.params);
    for (const offset of [0, 3, 70]) {
      for (const plain of [false, true]) {
        const got = renamed(msg.bind(c.portal, c.from, c.params), c.to, offset, plain);
        expect(Buffer.compare(got, want)).toBe(0);
        const d = decodeBind({ buf: got, start: 0, end: got.length });
        expect([d.portal, d.statement]).toEqual([c.portal, c.to]);
      }
    }
  }
});
