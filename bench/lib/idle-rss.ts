/**
 * Idle resident memory, read once it has settled. V8 gives back what start-up and the first
 * requests grew (its young generation above all) only when its memory reducer runs, seconds after
 * the process went quiet: a gateway with the chain of five read 95 MB for 5.5 s after its last
 * request, then 78 MB, flat from then on. A reading taken at once measures that timing, not what
 * the process needs at rest, so the benches wait until the resident set has stayed put for
 * longer than that delay.
 */

export interface SettleOptions {
  /** Between two readings, ms. */
  everyMs?: number;
  /** How long the readings must stay within `tolerance` of each other, ms. */
  stableMs?: number;
  /** Give up waiting after this long and take the last reading, ms. */
  maxMs?: number;
  /** Largest relative spread of the readings over `stableMs` that counts as settled. */
  tolerance?: number;
}

export interface Settled {
  mb: number;
  /** False when `maxMs` passed first: the reading is the last one, still moving. */
  settled: boolean;
}

/** Reads `rssMb` every `everyMs` until the readings of the last `stableMs` agree (bounded by `maxMs`). */
export async function settledRssMb(rssMb: () => number, options: SettleOptions = {}): Promise<Settled> {
  const { everyMs = 500, stableMs = 8000, maxMs = 30_000, tolerance = 0.01 } = options;
  const window = Math.max(2, Math.round(stableMs / everyMs) + 1);
  const readings: number[] = [];
  const start = Date.now();
  for (;;) {
    readings.push(rssMb());
    const recent = readings.slice(-window);
    const last = recent[recent.length - 1];
    if (recent.length === window && Math.max(...recent) - Math.min(...recent) <= tolerance * last) return { mb: last, settled: true };
    if (Date.now() - start >= maxMs) return { mb: last, settled: false };
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
