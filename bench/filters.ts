/**
 * Per-filter cost in the ABI host alone: what one request costs through each shipped filter of
 * filters/dist/, with filters/dist/stamp.wasm (the WAT example) as the reference.
 *
 *   npx tsx bench/filters.ts
 *   BENCH_TIME_SCALE=0.3 npx tsx bench/filters.ts     (quicker, noisier)
 *   BENCH_ONLY=stamp,headers npx tsx bench/filters.ts (some filters only; stamp is always run)
 *   npx tsx bench/filters.ts --json out.json           (also writes the rows as JSON)
 *
 * One sample = one request = vm.createStream(root, host) + onRequestHeaders(n, true) +
 * onResponseHeaders(m, true) + finish() (on_log + on_done + on_delete), on an already configured
 * root. Fresh request and response header maps are built inside the timed region (the data plane
 * builds them per request too). No network, no data plane, no body. bench/README.md
 * ("Per-filter cost (ABI host)") describes the per-filter set-up and records figures.
 *
 * Each filter runs in a child process of its own (measureInChild), twice side by side and
 * interleaved in rounds: as compiled from its bytes (no budget), and as the module store
 * prepares it (modules/wasm/instrument.ts: budget checks at function entries and loop back
 * edges, the capped memory, the VM's deadline per outermost call). The "budget cost" column is the median of the per-round ratios of the two
 * (each round measures both sides back to back, so a slow stretch of the machine hits both),
 * taken in BENCH_PROCESSES child processes per filter (default 3): the table shows the median
 * over the processes and the lowest and highest process, which is how far to trust it.
 *   BENCH_ROUNDS=20 npx tsx bench/filters.ts           (more rounds, same total time per filter)
 *   BENCH_PROCESSES=5 npx tsx bench/filters.ts         (more processes per filter)
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import os, { tmpdir } from 'node:os';
import { FILTER_CASES, type FilterCase } from './lib/filter-cases.js';
import { calloutCount, check, complaintCount, prepareFilter } from './lib/filter-vm.js';
import { measureSync } from './lib/report.js';

const jsonAt = process.argv.indexOf('--json');
const JSON_OUT = jsonAt > 0 ? process.argv[jsonAt + 1] : undefined;

interface Result {
  name: string; median: number; p99: number; samples: number; note: string; budgeted: number; budgetedP99: number;
  /** Budgeted ÷ plain per round: median, and its spread (25th–75th percentile in one process, lowest–highest process in the table). */
  cost: number; costLow: number; costHigh: number;
}

const cpus = os.cpus();
console.log('edge-gateway per-filter cost (ABI host)');
console.log(`node ${process.version} · ${os.platform()}-${os.arch()} · ${cpus[0]?.model ?? 'unknown CPU'} × ${cpus.length}`
  + ` · load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} · ${new Date().toISOString()}\n`);

const only = process.env.BENCH_ONLY?.split(',').map((name) => name.trim());
const results: Result[] = [];
/** Rounds of plain / budgeted measurements, alternating which goes first, per filter. */
const ROUNDS = Math.max(2, Number(process.env.BENCH_ROUNDS ?? 10));

const quantile = (xs: number[], q: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * q))];
const median = (xs: number[]): number => quantile(xs, 0.5);

/** Both sides of one filter, measured in this process. */
function measureCase(c: FilterCase): Result {
  const sides = [prepareFilter(c, false), prepareFilter(c, true)];
  const medians: number[][] = [[], []];
  const p99s: number[][] = [[], []];
  let samples = 0;
  for (let round = 0; round < ROUNDS; round++) {
    for (const k of round % 2 === 0 ? [0, 1] : [1, 0]) {
      const m = measureSync(c.name, sides[k].oneRequest, { timeMs: 2000 / ROUNDS, warmupMs: round === 0 ? 300 : 50 });
      medians[k].push(m.median / 1e3);
      p99s[k].push(m.p99 / 1e3);
      if (k === 0) samples += m.samples;
    }
  }
  for (const side of sides) check(!side.vm.failed && complaintCount() === 0 && side.last().localReplies === 0, `${c.name}: after the run`);
  const ratios = medians[1].map((b, i) => b / medians[0][i]);
  if (c.name === 'ext-authz') check(calloutCount() > 0, 'ext-authz made its callout');
  return { name: c.name, median: median(medians[0]), p99: median(p99s[0]), samples, note: c.note,
    budgeted: median(medians[1]), budgetedP99: median(p99s[1]),
    cost: median(ratios) - 1, costLow: quantile(ratios, 0.25) - 1, costHigh: quantile(ratios, 0.75) - 1 };
}

/**
 * One filter in a fresh process of this bench. In one process holding every filter's VMs, the
 * plain side of a filter read up to 25% slower than alone while the budgeted side moved less,
 * which hid most of the budget's cost (bench/README.md, "Budget cost").
 */
function measureInChild(c: FilterCase): Result {
  const out = join(mkdtempSync(join(tmpdir(), 'edge-gw-bench-')), 'result.json');
  const child = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url)], {
    env: { ...process.env, BENCH_CASE: c.name, BENCH_CASE_JSON: out }, stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (child.status !== 0) throw new Error(`${c.name}: the bench's child process exited with ${child.status ?? child.signal}`);
  const result = JSON.parse(readFileSync(out, 'utf8')) as Result;
  rmSync(dirname(out), { recursive: true, force: true });
  return result;
}

const childCase = process.env.BENCH_CASE;
if (childCase !== undefined) {
  writeFileSync(process.env.BENCH_CASE_JSON!, JSON.stringify(measureCase(FILTER_CASES.find((c) => c.name === childCase)!)));
  process.exit(0);
}
/**
 * Child processes per filter. One process's figure moves with where V8 placed its code and heap:
 * the same build read api-key's budget cost at 3.7% in one process and 15% in the next, while
 * the rounds inside each agreed within a point. So each filter runs in PROCESSES processes, taken
 * in turns across the filters, and its figures are the medians over them.
 */
const PROCESSES = Math.max(1, Number(process.env.BENCH_PROCESSES ?? 3));
const cases = FILTER_CASES.filter((c) => only === undefined || c.name === 'stamp' || only.includes(c.name));
const runs = new Map<string, Result[]>(cases.map((c) => [c.name, []]));
for (let p = 0; p < PROCESSES; p++) {
  for (const c of cases) {
    console.error(`  ${c.name} (process ${p + 1} of ${PROCESSES})…`);
    runs.get(c.name)!.push(measureInChild(c));
  }
}
/** One row per filter: medians over its processes; the cost's spread is the lowest and highest process. */
for (const c of cases) {
  const rs = runs.get(c.name)!;
  const mid = (pick: (r: Result) => number): number => median(rs.map(pick));
  const costs = rs.map((r) => r.cost);
  results.push({ name: c.name, note: c.note, median: mid((r) => r.median), p99: mid((r) => r.p99), samples: rs.reduce((n, r) => n + r.samples, 0),
    budgeted: mid((r) => r.budgeted), budgetedP99: mid((r) => r.budgetedP99),
    cost: median(costs), costLow: Math.min(...costs), costHigh: Math.max(...costs) });
}

const percent = (x: number): string => `${(x * 100).toFixed(1)}%`;
const stamp = results.find((r) => r.name === 'stamp')!;
const rows = [['filter', 'median µs', 'p99 µs', 'ratio to stamp', 'samples', 'budget median µs', 'budget p99 µs', 'budget cost', 'processes: lowest … highest'],
  ...results.map((r) => [r.name, r.median.toFixed(2), r.p99.toFixed(2), `${(r.median / stamp.median).toFixed(1)}×`, String(r.samples),
    r.budgeted.toFixed(2), r.budgetedP99.toFixed(2), percent(r.cost), `${percent(r.costLow)} … ${percent(r.costHigh)}`])];
const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
const line = (r: string[]): string => `| ${r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join(' | ')} |`;
console.log(line(rows[0]));
console.log(`|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`);
for (const r of rows.slice(1)) console.log(line(r));
console.log(`\nload after: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
console.log('\nset-up per filter:');
for (const r of results) console.log(`  ${r.name}: ${r.note}`);
if (JSON_OUT !== undefined) writeFileSync(JSON_OUT, `${JSON.stringify(results, null, 2)}\n`);
