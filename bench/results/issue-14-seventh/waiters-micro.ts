// A take and a join per round of a steady queue of n waiters: Array shift+push against WaiterQueue (ns a round).
// node_modules/.bin/bun bench/results/issue-14-seventh/waiters-micro.ts
import { WaiterQueue } from "../../../plugins/pool/waiters.ts";
for (const n of [1, 5, 30, 180, 2000]) {
  const a: object[] = []; for (let i = 0; i < n; i++) a.push({ i });
  let t = Bun.nanoseconds();
  for (let r = 0; r < 2_000_000; r++) { const x = a.shift()!; a.push(x); }
  const arr = (Bun.nanoseconds() - t) / 2e6;
  const q = new WaiterQueue(); for (let i = 0; i < n; i++) q.push({ i } as any);
  t = Bun.nanoseconds();
  for (let r = 0; r < 2_000_000; r++) { const x = q.shift()!; q.push(x); }
  const wq = (Bun.nanoseconds() - t) / 2e6;
  console.log(n, "array shift+push ns", arr.toFixed(1), "WaiterQueue", wq.toFixed(1));
}
