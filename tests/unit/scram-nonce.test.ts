// Unit test of pgbun:auth's SCRAM server nonce: the client's nonce followed by 18 fresh random bytes in base64, new for every exchange.
import { expect, test } from "bun:test";
import { mockScramKeys, ScramServer } from "../../plugins/auth/scram.ts";

test("the server nonce is the client's plus 24 base64 characters of 18 random bytes, never the same twice", () => {
  const keys = mockScramKeys("someone", 4096);
  const seen = new Set<string>();
  for (let i = 0; i < 1000; i++) {
    const first = new ScramServer(keys).serverFirstMessage("n,,n=,r=clientnonce");
    const m = /^r=clientnonce([A-Za-z0-9+/]{24}),s=([A-Za-z0-9+/=]+),i=4096$/.exec(first);
    expect(m).not.toBeNull();
    expect(Buffer.from(m![1]!, "base64").length).toBe(18);
    seen.add(m![1]!);
  }
  expect(seen.size).toBe(1000);
});
