/**
 * The sandbox's cost per shipped filter in machine instructions, which, unlike time, a busy
 * 2-core machine does not blur: bench/filters.ts reads ±20% between two runs of the same code,
 * this reads the same count twice.
 *
 *   npx tsx bench/budget-instructions.ts                  (every filter; a few minutes)
 *   BENCH_ONLY=jwt,cors npx tsx bench/budget-instructions.ts
 *
 * Each filter runs in a child `node` under `valgrind --tool=callgrind`, once plain (the module
 * as compiled from its bytes) and once budgeted (as the module store prepares it), each with LOW
 * and HIGH requests: (instructions at HIGH − instructions at LOW) / (HIGH − LOW) is the count per
 * request with start-up, compilation and warm-up cancelled out. V8 runs with `--no-liftoff` so
 * the guest's code is TurboFan's from the first request on both sides (tier-up timing would
 * otherwise differ between runs), and with `--single-threaded` so no background compile or GC
 * thread's work lands in one count and not the other.
 *
 * What it does not show: the cost of a counted instruction varies (a well-predicted branch on a
 * register is cheaper than an average instruction), so time, measured in bench/filters.ts on a
 * quiet machine, stays the judge; this is the figure that tells a change to the rewrite helped.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FILTER_CASES } from './lib/filter-cases.js';
import { check, complaintCount, prepareFilter } from './lib/filter-vm.js';

const LOW = 2000;
const HIGH = 12000;
/** The child, bundled once: under valgrind, tsx's loader would cost a minute per run. */
const CHILD = fileURLToPath(new URL('.out/budget-instructions.mjs', import.meta.url));
const V8_FLAGS = ['--no-liftoff', '--single-threaded'];
/** Valgrind runs code ~50× slower: budgets that still arm, read the clock and never expire. */
const LIMITS = { cpuMs: 600_000, startCpuMs: 600_000, memoryMb: 128 };

/** Child: prepare one side of one filter, run `n` requests, exit. */
function child(name: string, side: string, n: number): void {
  const c = FILTER_CASES.find((f) => f.name === name);
  if (c === undefined) throw new Error(`no filter case ${name}`);
  const { vm, oneRequest } = prepareFilter(c, side === 'budgeted', LIMITS);
  for (let i = 0; i < n; i++) oneRequest();
  check(!vm.failed && complaintCount() === 0, `${name} (${side}): after ${n} requests`);
}

/** Instructions (callgrind's Ir) of one child run. */
function count(name: string, side: string, n: number, dir: string): number {
  const out = path.join(dir, `${name}-${side}-${n}.out`);
  const run = spawnSync('valgrind', ['--tool=callgrind', `--callgrind-out-file=${out}`, '--dump-line=no', '--compress-strings=no',
    process.execPath, ...V8_FLAGS, CHILD, '--child', name, side, String(n)], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (run.status !== 0) throw new Error(`${name} ${side} ${n}: exit ${run.status}\n${run.stderr.slice(-2000)}`);
  const totals = /^(?:summary|totals): (\d+)/m.exec(readFileSync(out, 'utf8'));
  if (totals === null) throw new Error(`${name} ${side} ${n}: no totals in ${out}`);
  return Number(totals[1]);
}

async function parent(): Promise<void> {
  try {
    execFileSync('valgrind', ['--version'], { stdio: 'ignore' });
  } catch {
    console.error('valgrind is not installed (apt-get install valgrind)');
    process.exit(2);
  }
  mkdirSync(path.dirname(CHILD), { recursive: true });
  const { build } = await import('esbuild');
  await build({ entryPoints: [fileURLToPath(import.meta.url)], bundle: true, platform: 'node', format: 'esm', outfile: CHILD, logLevel: 'warning' });
  const only = process.env.BENCH_ONLY?.split(',').map((s) => s.trim());
  const cases = FILTER_CASES.filter((c) => only === undefined || only.includes(c.name));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'budget-ir-'));
  console.log('edge-gateway budget cost in instructions per request (callgrind)');
  console.log(`node ${process.version} ${V8_FLAGS.join(' ')} · ${os.platform()}-${os.arch()} · requests ${LOW} → ${HIGH}\n`);
  const rows: string[][] = [['filter', 'plain Ir/req', 'budgeted Ir/req', 'budget cost']];
  try {
    for (const c of cases) {
      const per = (side: string): number => (count(c.name, side, HIGH, dir) - count(c.name, side, LOW, dir)) / (HIGH - LOW);
      const plain = per('plain');
      const budgeted = per('budgeted');
      rows.push([c.name, plain.toFixed(0), budgeted.toFixed(0), `${(((budgeted - plain) / plain) * 100).toFixed(1)}%`]);
      console.log(rows.at(-1)!.join('  '));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const line = (r: string[]): string => `| ${r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join(' | ')} |`;
  console.log(`\n${line(rows[0])}`);
  console.log(`|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`);
  for (const r of rows.slice(1)) console.log(line(r));
}

const at = process.argv.indexOf('--child');
if (at > 0) child(process.argv[at + 1], process.argv[at + 2], Number(process.argv[at + 3]));
else await parent();
