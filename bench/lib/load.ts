/**
 * The load generator of the proxy bench, in a process of its own so that it never shares an event
 * loop with a server under test. bench/proxy.ts spawns it with one JSON argument
 * ({ url, connections, warmupS, durationS, headers }); it runs autocannon programmatically, first
 * a warm-up whose figures are thrown away, then the measured run, and prints one JSON line with
 * the result on stdout (after a `{"phase":"measure"}` line when the measured run starts).
 *
 * Latency: autocannon's histogram keeps whole milliseconds, too coarse for a proxy on loopback, so
 * every response time (ms, sub-µs resolution from hrtime) is also recorded here and p50/p99 (and
 * the percentiles of `latencyMs`) come from those samples.
 */
import type { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { LATENCY_PERCENTILES, percentile } from './stats.js';

/** The part of autocannon's programmatic API used here (the package ships no types). */
interface AutocannonResult {
  requests: { total: number };
  /** Seconds, as measured by autocannon. */
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
}
type Autocannon = (opts: Record<string, unknown>, done: (err: Error | null, result: AutocannonResult) => void) => EventEmitter;
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

export interface LoadSpec {
  url: string;
  connections: number;
  warmupS: number;
  durationS: number;
  headers: Record<string, string>;
  /** Only warm up: send this many requests (at most `durationS` seconds), measure nothing. */
  warmupRequests?: number;
}

export interface LoadResult {
  requests: number;
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** Latency (ms) of the 2xx responses at each of LATENCY_PERCENTILES (bench/lib/stats.ts), in that order. */
  latencyMs: number[];
  errors: number;
  timeouts: number;
  non2xx: number;
}

function run(spec: LoadSpec, durationS: number, samples: number[] | null, amount?: number): Promise<AutocannonResult> {
  return new Promise((resolve, reject) => {
    const instance = autocannon({
      url: spec.url,
      connections: spec.connections,
      pipelining: 1,
      duration: durationS,
      headers: spec.headers,
      ...(amount === undefined ? {} : { amount }),
    }, (err, result) => (err ? reject(err) : resolve(result)));
    // `amount` makes autocannon ignore `duration`: bound the run in time as well.
    const timer = amount === undefined ? null : setTimeout(() => (instance as EventEmitter & { stop(): void }).stop(), durationS * 1000);
    instance.once('done', () => { if (timer !== null) clearTimeout(timer); });
    if (samples !== null) {
      instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
        if (statusCode < 300) samples.push(responseTime);
      });
    }
  });
}

const spec = JSON.parse(process.argv[2]) as LoadSpec;
if (spec.warmupRequests !== undefined) {
  const result = await run(spec, spec.durationS, null, spec.warmupRequests);
  process.stdout.write(`${JSON.stringify({ warmup: true, requests: result.requests.total, errors: result.errors, non2xx: result.non2xx })}\n`);
  process.exit(0);
}
if (spec.warmupS > 0) await run(spec, spec.warmupS, null);
// Tells the parent the measured run starts now (it reads the servers' CPU time around it).
process.stdout.write(`${JSON.stringify({ phase: 'measure' })}\n`);
const samples: number[] = [];
const result = await run(spec, spec.durationS, samples);
const sorted = Float64Array.from(samples).sort();
const out: LoadResult = {
  requests: result.requests.total,
  reqPerSec: result.requests.total / (result.duration || spec.durationS),
  p50Ms: percentile(sorted, 0.5),
  p99Ms: percentile(sorted, 0.99),
  latencyMs: LATENCY_PERCENTILES.map((p) => percentile(sorted, p)),
  errors: result.errors,
  timeouts: result.timeouts,
  non2xx: result.non2xx,
};
process.stdout.write(`${JSON.stringify(out)}\n`);
