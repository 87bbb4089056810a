// auth_failure_delay: failed password logins from one address are answered at most one per delay once a small burst is spent.

/** Failures an address may have answered at once before the delay applies (a few typos cost nothing). */
export const FAILURE_BURST = 5;
/** Addresses remembered at most: the oldest is forgotten first, so memory stays bounded whatever clients do. */
export const MAX_ADDRESSES = 10_000;

/**
 * A token bucket per address: each failed login takes a token, tokens come back one per `delayMs`, and a failure
 * that finds none waits for the next one. Failures arriving together from one address are thus answered one per
 * delay (a brute force gets 1/delay guesses a second, however many connections it opens); a failure that waited
 * is counted where it will be answered, so the waits queue up rather than overlap.
 */
export class LoginThrottle {
  /** Per address: when its bucket would be full again (ms). An address is absent when its bucket is full. */
  private readonly fullAt = new Map<string, number>();

  constructor(private readonly maxAddresses = MAX_ADDRESSES) {}

  get size(): number {
    return this.fullAt.size;
  }

  /** Records a failed login from `addr` at `now`; returns how long (ms) to wait before answering it. */
  failed(addr: string, now: number, delayMs: number): number {
    if (delayMs <= 0) return 0;
    const burstMs = FAILURE_BURST * delayMs;
    // the bucket empties at fullAt - burstMs: a failure then must wait for the token that comes back at ... + delayMs
    const full = Math.max(this.fullAt.get(addr) ?? now, now);
    const next = full + delayMs;
    this.fullAt.delete(addr); // re-inserted last: Map order is then least recently failed first
    if (this.fullAt.size >= this.maxAddresses) this.fullAt.delete(this.fullAt.keys().next().value!);
    this.fullAt.set(addr, next);
    return Math.max(0, next - burstMs - now);
  }

  /** Forgets addresses whose buckets are full again (from the janitor's tick). */
  sweep(now: number): void {
    for (const [addr, full] of this.fullAt) if (full <= now) this.fullAt.delete(addr);
  }
}
