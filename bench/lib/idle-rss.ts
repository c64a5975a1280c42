/**
 * Idle resident memory, read once V8 has given back what start-up and the first requests grew.
 * V8 does that (its young generation above all) only when its memory reducer runs, on a timer of
 * about 8 s that may pass more than once before it acts: measured on three gateways started side
 * by side and left idle after a few requests, no filter read 98 MB for 6.5 s and then 81 MB, the
 * `headers` filter 91 MB for 7 s and then 74 MB, the chain of five 96 MB for 15.5 s and then
 * 79 MB, flat from then on. A reading taken at once measures that timing, not what the process
 * needs at rest, and so does a reading taken once the RSS has held for a few seconds (the chain's
 * plateau lasted 15 s). So the benches watch the idle process for a fixed window and take the
 * lowest reading: an idle process does not grow.
 */

export interface IdleOptions {
  /** Between two readings, ms. */
  everyMs?: number;
  /** How long the idle process is watched, ms. */
  windowMs?: number;
  /** How long the lowest reading must have held by the end of the window to count as settled, ms. */
  heldMs?: number;
}

export interface IdleRss {
  /** The lowest reading of the window. */
  mb: number;
  /** False when that reading came within `heldMs` of the window's end: the RSS may still have been falling. */
  settled: boolean;
}

/** Reads `rssMb` every `everyMs` for `windowMs` and answers the lowest reading (see the file header). */
export async function idleRssOver(rssMb: () => number, options: IdleOptions = {}): Promise<IdleRss> {
  const { everyMs = 500, windowMs = 30_000, heldMs = 8000 } = options;
  const start = Date.now();
  let lowest = Infinity;
  let lowestAt = 0;
  for (;;) {
    const mb = rssMb();
    const now = Date.now() - start;
    // A reading within 1% of the lowest is the same level: the level holds since it was first reached.
    if (mb < lowest * 0.99) lowestAt = now;
    if (mb < lowest) lowest = mb;
    if (now >= windowMs) return { mb: lowest, settled: now - lowestAt >= heldMs };
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
