/**
 * The process that loads the mutants (started by supervise.ts): a crash or an endless guest loop
 * takes down this process, never the test runner, and the supervisor sees which mutant did it.
 *
 *   node --import tsx test/fuzz/module-fuzz-child.ts SEED FROM COUNT DEADLINE_EPOCH_MS
 *   node --import tsx test/fuzz/module-fuzz-child.ts probe      (the outcome of LOOPING_GUEST)
 *   node --import tsx test/fuzz/module-fuzz-child.ts generation SEED FROM COUNT
 *                                     (COUNT mutants as the plugins of one configuration, validated)
 *
 * Writes one JSON line per mutant, `{"started":i}` before it (so a hang or crash is pinned to
 * its index), then `{"done":true}`. An escape is reported as a line, and the run goes on.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Escape, LOOPING_GUEST, fuzzStore, loadPath, runMutant, seedModules, validateMutants } from './module-fuzz.js';

const out = (line: object): void => { process.stdout.write(`${JSON.stringify(line)}\n`); };
const [seed, from, count, deadline] = process.argv.slice(2).map(Number);
const store = fuzzStore();

if (process.argv[2] === 'probe') {
  out({ ready: true });
  out({ probe: await loadPath(store, LOOPING_GUEST.bytes, LOOPING_GUEST, null) });
  process.exit(0);
}
const seeds = seedModules();
const dir = mkdtempSync(join(tmpdir(), 'edge-gw-fuzz-'));
if (process.argv[2] === 'generation') {
  const [g, start, n] = process.argv.slice(3).map(Number);
  out({ ready: true });
  try {
    out({ generation: await validateMutants(g, start, n, seeds, dir) });
  } catch (err) {
    out({ escape: (err as Error).stack ?? String(err) });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  process.exit(0);
}
try {
  for (let i = from; i < from + count && Date.now() < deadline; i++) {
    out({ started: i });
    try {
      out(await runMutant(seed, i, seeds, store, dir));
    } catch (err) {
      out({ index: i, escape: err instanceof Escape ? err.message : `${(err as Error).stack ?? String(err)}` });
    }
  }
  out({ done: true });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
