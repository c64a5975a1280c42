/**
 * The token bucket as a sum of per-node entries (README "How the counts add up").
 *
 * Each gateway node n keeps one entry per key: `net` (the tokens it consumed, minus the refill it
 * credited) and `at` (when it last wrote, in ns). The bucket's debt (capacity minus the tokens
 * available) is read from all of them:
 *
 *   debt(now) = max(0, Σ net_n − refillPerSecond × (now − max at_n))
 *
 * Refill is credited by whoever writes next, for the time since the latest write anywhere, so it is
 * counted once however many nodes there are. The writer admits the request when debt + 1 ≤
 * capacity and then moves its own `net` so that the sum becomes debt + 1; nobody else's entry is
 * touched, so no node's consumption is ever overwritten. Individual `net` values may drift
 * (even below 0); only the sum has a meaning.
 */

/** Slack for the float arithmetic of refill (a billionth of a token). */
const EPSILON: f64 = 1e-9;
const NS_PER_SECOND: f64 = 1e9;
/** An entry is `net` (f64) then `at` (u64 ns since the epoch), little-endian: 16 bytes. */
export const ENTRY_BYTES: i32 = 16;

/** One node's entry; a missing or malformed value reads as zero at time 0. */
export class Entry {
  constructor(public net: f64, public at: u64) {}
}

export function decodeEntry(value: ArrayBuffer | null): Entry {
  if (value === null || value.byteLength != ENTRY_BYTES) return new Entry(0, 0);
  const p = changetype<usize>(value);
  const net = load<f64>(p);
  return new Entry(isFinite(net) ? net : 0, load<u64>(p, 8));
}

export function encodeEntry(net: f64, at: u64): ArrayBuffer {
  const out = new ArrayBuffer(ENTRY_BYTES);
  const p = changetype<usize>(out);
  store<f64>(p, net);
  store<u64>(p, at, 8);
  return out;
}

/** What the bucket says about one request, and the numbers for the rate-limit headers. */
export class Decision {
  allowed: bool = false;
  /** The writer's new `net` (when allowed). */
  net: f64 = 0;
  remaining: i64 = 0;
  /**
   * Seconds until `remaining` grows by one (the next whole token is back): on a refused request,
   * when a request may pass again, so it equals `retryAfterSeconds` (as Envoy's local rate limit
   * and the IETF RateLimit headers draft read reset: when the quota lets the client in again).
   */
  resetSeconds: i64 = 0;
  /** Seconds until one token is available (when refused). */
  retryAfterSeconds: i64 = 0;
}

/**
 * Decides one request: `sum` and `latest` are Σ net_n and max at_n over every node's entry,
 * `ownNet` this node's entry.
 */
export function decide(capacity: f64, refillPerSecond: f64, sum: f64, latest: u64, ownNet: f64, now: u64): Decision {
  const elapsed = now > latest ? <f64>(now - latest) / NS_PER_SECOND : 0.0;
  const debt = Math.max(0.0, sum - elapsed * refillPerSecond);
  const d = new Decision();
  if (debt + 1.0 <= capacity + EPSILON) {
    const after = debt + 1.0;
    d.allowed = true;
    d.net = ownNet + (after - sum);
    d.remaining = <i64>Math.max(0.0, Math.floor(capacity - after + EPSILON));
    // Tokens in use must fall to capacity - (remaining + 1) for one more to be free.
    d.resetSeconds = ceilSeconds((after - (capacity - <f64>d.remaining - 1.0)) / refillPerSecond);
  } else {
    d.remaining = 0;
    d.retryAfterSeconds = <i64>Math.max(1.0, <f64>ceilSeconds((debt + 1.0 - capacity) / refillPerSecond));
    d.resetSeconds = d.retryAfterSeconds;
  }
  return d;
}

function ceilSeconds(seconds: f64): i64 {
  return <i64>Math.max(0.0, Math.ceil(seconds - EPSILON));
}
