/**
 * Module fuzzing: thousands of mutants of real modules through the load path
 * a plugin takes (module-fuzz.ts), in a watched child process (supervise.ts). Bounded for CI by
 * count and time; `npx tsx bench/fuzz-modules.ts` runs the same for longer. FUZZ_SEED and
 * FUZZ_MODULES override the seed and the count; the report printed on failure names the seed and
 * the index of every mutant at fault, with the command that replays it alone.
 */
import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../gateway/errors.js';
import { fuzzStore, loadPath, seedModules } from './module-fuzz.js';
import { MUTATORS, mutantRand, mutate } from './mutate.js';
import { budgetEnforced, describeReport, fuzzGeneration, superviseFuzz } from './supervise.js';

const SEED = Number(process.env.FUZZ_SEED ?? 1);
const COUNT = Number(process.env.FUZZ_MODULES ?? 3000);

let probed: Promise<boolean> | null = null;
/** Whether this host has the CPU budget (probed once, in a child: without it the probe hangs). */
const hasBudget = (): Promise<boolean> => (probed ??= budgetEnforced());

describe('loading mutated modules', () => {
  it('starts every seed module unmutated and runs a stream through it, so mutants reach every stage', async () => {
    const store = fuzzStore();
    const outcomes = [];
    for (const seed of seedModules()) outcomes.push([seed.name, await loadPath(store, seed.bytes, seed, null)]);
    expect(outcomes.length).toBeGreaterThanOrEqual(15);
    expect(outcomes.filter(([, o]) => o !== 'ok')).toEqual([]);
  });

  it('derives the same mutant from the same seed and index, and another from the next index', () => {
    const base = seedModules()[0].bytes;
    const a = mutate(base, mutantRand(SEED, 7));
    const b = mutate(base, mutantRand(SEED, 7));
    const c = mutate(base, mutantRand(SEED, 8));
    expect(Buffer.from(a.bytes).equals(Buffer.from(b.bytes))).toBe(true);
    expect(a.how).toBe(b.how);
    expect(Buffer.from(a.bytes).equals(Buffer.from(c.bytes)) && a.how === c.how).toBe(false);
  });

  it('mutates a module already truncated inside its header (a mutant of a mutant) without throwing', () => {
    // Seed 1478458296, mutant 95838 threw RangeError from the custom-section mutator: with no
    // section left it inserted at byte 8, past the end of a module truncated to fewer bytes.
    const short = seedModules()[0].bytes.slice(0, 5);
    for (let i = 0; i < 20; i++) {
      const out = MUTATORS['custom-section'](short, mutantRand(SEED, i));
      expect(Buffer.from(out.subarray(0, 5)).equals(Buffer.from(short))).toBe(true);
      expect(out.length).toBeGreaterThan(short.length);
    }
  });

  it('ends every mutant in success or a coded GatewayError, never crashing or hanging the process that loads it', async () => {
    // A mutant can loop for ever (a changed loop bound or branch). With the CPU budget that is a
    // GW_ERR_ABI_BUDGET like any other failure; a host without one can only hang, which is then
    // reported here but not counted against the load path.
    const budget = await hasBudget();
    const report = await superviseFuzz({ seed: SEED, count: COUNT, timeMs: 25_000 });
    const text = describeReport(report);
    const hangs = report.problems.filter((p) => p.kind === 'hang');
    if (!budget && hangs.length > 0) console.warn(`no CPU budget in this host: ${hangs.length} mutants hung\n${text}`);
    expect(report.problems.filter((p) => budget || p.kind !== 'hang'), text).toEqual([]);
    expect(report.ran, text).toBeGreaterThanOrEqual(Math.min(COUNT, 1000));
    for (const outcome of report.outcomes.keys()) {
      expect(outcome === 'ok' || outcome.split(':')[1] in ErrorCodes, `${outcome}\n${text}`).toBe(true);
    }
    // Past the parser: mutants that link and start, fail to start, and fail in a stream.
    const stages = new Set([...report.outcomes.keys()].map((o) => o.split(':')[0]));
    expect([...stages].sort(), text).toEqual(expect.arrayContaining(['load', 'ok', 'start']));
    // Both entries of the module store: compile (bytes in hand) and load (a file with its pin).
    expect(report.via.get('compile'), text).toBeGreaterThan(0);
    expect(report.via.get('file'), text).toBeGreaterThan(0);
  }, 60_000);


  it('validates a configuration of 200 mutated plugins: each failure listed with its code, the rest started and ended', async () => {
    // Mutants 0-199 of the seed (the supervised run above takes each alone; here they are one
    // generation). A hang is tolerated only without a CPU budget, as above.
    const budget = await hasBudget();
    const result = await fuzzGeneration(SEED, 0, 200);
    if ('problem' in result) {
      expect(!budget && result.problem.startsWith('hang'), `seed ${SEED}, mutants 0-199: ${result.problem}`).toBe(true);
      return;
    }
    expect(result.started + result.failures.length).toBe(200);
    expect(result.failures.length).toBeGreaterThan(100);
    expect(result.started).toBeGreaterThan(0);
    for (const code of result.failures) expect(code in ErrorCodes, code).toBe(true);
  }, 60_000);
});
