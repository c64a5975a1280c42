/**
 * The module fuzz of test/fuzz/modules.test.ts, for as long as you like:
 *
 *   npx tsx bench/fuzz-modules.ts [--seed N] [--count N] [--from N] [--minutes N] [--hang-ms N]
 *
 * Defaults: a random seed (printed), 100000 mutants, 60 minutes. Exit 1 when any mutant escaped
 * (an error without a GW_ERR_* code), crashed the process or hung it; each is printed with the
 * --seed/--from/--count that replays it alone.
 */
import { parseArgs } from 'node:util';
import { describeReport, superviseFuzz } from '../test/fuzz/supervise.js';

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    count: { type: 'string', default: '100000' },
    from: { type: 'string', default: '0' },
    minutes: { type: 'string', default: '60' },
    'hang-ms': { type: 'string', default: '5000' },
  },
});

const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 32) : Number(values.seed);
const count = Number(values.count);
let done = 0;
const started = Date.now();
console.log(`fuzzing ${count} mutants from ${values.from}, seed ${seed}`);
const report = await superviseFuzz({
  seed,
  from: Number(values.from),
  count,
  timeMs: Number(values.minutes) * 60_000,
  hangMs: Number(values['hang-ms']),
  onResult: () => {
    if (++done % 1000 === 0) console.log(`  ${done} mutants, ${Math.round((Date.now() - started) / 1000)} s`);
  },
});
console.log(describeReport(report));
process.exitCode = report.problems.length === 0 ? 0 : 1;
