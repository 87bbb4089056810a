// How CPU-profile frames are put in categories, and the self / on-the-stack sample counts per plugin and core file.
import { describe, expect, test } from "bun:test";
import { categoryOf, shares, type CpuProfile } from "./cpu-shares.ts";

describe("cpu profile shares", () => {
  test("frames go to their plugin, core file, the runtime or idle", () => {
    expect(categoryOf("/tmp/pgbun-bench-rev-x/59080cd/plugins/parameter-tracking/index.ts", "f")).toBe("plugins/parameter-tracking");
    expect(categoryOf("/work/main/core/protocol/framer.ts", "process")).toBe("core/protocol/framer");
    expect(categoryOf("", "write")).toBe("(runtime)");
    expect(categoryOf("", "(idle)")).toBe("(idle)");
    expect(categoryOf("node:net", "emit")).toBe("other");
  });

  test("a sample counts once per plugin on its stack, however deep; idle samples are left out", () => {
    const frame = (url: string, functionName = "f") => ({ functionName, url, lineNumber: 0 });
    const p: CpuProfile = {
      nodes: [
        { id: 1, callFrame: frame("/r/core/client.ts"), children: [2, 5] },
        { id: 2, callFrame: frame("/r/plugins/stats/index.ts"), children: [3] },
        { id: 3, callFrame: frame("/r/plugins/stats/tap-counters.ts"), children: [4] },
        { id: 4, callFrame: frame("", "write") },
        { id: 5, callFrame: frame("", "(idle)") },
      ],
      samples: [4, 3, 1, 5, 5],
    };
    const s = shares(p);
    expect(s.total).toBe(3);
    expect(Object.fromEntries(s.self)).toEqual({ "(runtime)": 1, "plugins/stats": 1, "core/client": 1 });
    expect(Object.fromEntries(s.onStack)).toEqual({ "plugins/stats": 2, "core/client": 3 });
  });
});
