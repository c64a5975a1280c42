/**
 * The long run of the raw-socket HTTP fuzz test (test/fuzz/http.test.ts runs a bounded slice of
 * it in the suite): malformed and adversarial requests against a real gateway process, with the
 * same checks (the process stays up, 4xx or a close for invalid requests, a valid request after
 * each answers 200, nothing hidden or denied reaches the upstream).
 *
 *   npx tsx bench/fuzz-http.ts                 # 20000 cases, seed 1
 *   npx tsx bench/fuzz-http.ts 100000 7        # count and seed
 *   FUZZ_CONCURRENCY=32 npx tsx bench/fuzz-http.ts 50000
 *
 * Exits 1 when any check fails, listing the failing cases (replay one with its seed and index).
 */
import { generateCases } from '../test/helpers/http-fuzz-cases.js';
import { finalViolations, runFuzz, startFuzzTarget } from '../test/helpers/http-fuzz-run.js';

async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? 20_000);
  const seed = Number(process.argv[3] ?? 1);
  const concurrency = Number(process.env.FUZZ_CONCURRENCY ?? 16);
  if (!Number.isInteger(count) || count <= 0 || !Number.isInteger(seed)) {
    console.error('usage: npx tsx bench/fuzz-http.ts [count] [seed]');
    process.exit(2);
  }
  const target = await startFuzzTarget();
  const started = Date.now();
  try {
    const report = await runFuzz(target, generateCases(seed, count), concurrency, Number.POSITIVE_INFINITY);
    // The last access lines and upstream requests land a moment after the last answer.
    await new Promise((r) => setTimeout(r, 500));
    const final = finalViolations(target);
    const seconds = (Date.now() - started) / 1000;
    console.log(`${report.ran} cases (seed ${seed}) in ${seconds.toFixed(1)} s, ${(report.ran / seconds).toFixed(0)}/s`);
    console.log('families:', JSON.stringify(report.families));
    console.log('answers: ', JSON.stringify(report.statuses));
    const grouped = new Map<string, string[]>();
    for (const v of report.violations) {
      const key = `${v.family}: ${v.problem}`;
      grouped.set(key, [...(grouped.get(key) ?? []), `#${v.index} ${JSON.stringify(v.request)}`]);
    }
    for (const [key, examples] of grouped) console.log(`FAIL ${key} (${examples.length}×)\n  ${examples.slice(0, 3).join('\n  ')}`);
    for (const problem of final) console.log(`FAIL ${problem}`);
    if (report.violations.length > 0 || final.length > 0) process.exitCode = 1;
    else console.log('no violations');
  } finally {
    await target.stop();
  }
}

void main();
