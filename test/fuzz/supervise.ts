/**
 * Runs the module fuzz in a child process and watches it: a mutant that crashes the process or
 * keeps it busy past `hangMs` is recorded with its index, and the run resumes after it in a fresh
 * child. Used by test/fuzz/modules.test.ts (bounded) and bench/fuzz-modules.ts (long runs).
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { MutantResult } from './module-fuzz.js';

const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const CHILD = join(import.meta.dirname, 'module-fuzz-child.ts');

export interface FuzzOptions {
  readonly seed: number;
  /** First mutant index (to replay one: `from` = its index, `count` = 1). */
  readonly from?: number;
  readonly count: number;
  /** Wall-clock cap of the whole run; mutants not reached by then are not run. */
  readonly timeMs: number;
  /** A mutant silent for this long is a hang (default 5 s). */
  readonly hangMs?: number;
  /** Called for every finished mutant (progress, per-outcome counts). */
  readonly onResult?: (result: MutantResult) => void;
}

export interface Problem {
  readonly index: number;
  readonly kind: 'escape' | 'crash' | 'hang';
  readonly detail: string;
}

export interface FuzzReport {
  readonly seed: number;
  /** Mutants that ended with an outcome. */
  readonly ran: number;
  /** Mutants per outcome (`ok`, `load:GW_ERR_MODULE_INVALID`, …). */
  readonly outcomes: ReadonlyMap<string, number>;
  /** Mutants per store entry (`compile`, `file`). */
  readonly via: ReadonlyMap<string, number>;
  readonly problems: readonly Problem[];
  /** Child processes started (1 + one per crash or hang). */
  readonly children: number;
}

// Crashes and hangs each cost a fresh child; past this many the run stops (the report says why).
const MAX_CHILDREN = 20;

/** One child from `from`: resolves with the index to resume at, or null when the child finished. */
function runChild(opts: FuzzOptions, from: number, end: number, deadline: number, report: Mutable): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', TSX, CHILD, String(opts.seed), String(from), String(end - from), String(deadline)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let current = from;
    let finished = false;
    let stderr = '';
    let partial = '';
    let hung = false;
    let timer: NodeJS.Timeout;
    const arm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => { hung = true; child.kill('SIGKILL'); }, opts.hangMs ?? 5000);
    };
    arm();
    child.stderr.on('data', (c: Buffer) => { stderr = (stderr + c.toString('utf8')).slice(-4000); });
    child.stdout.on('data', (c: Buffer) => {
      arm();
      const lines = (partial + c.toString('utf8')).split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        const msg = JSON.parse(line) as { started?: number; done?: boolean; index?: number; escape?: string } & Partial<MutantResult>;
        if (msg.started !== undefined) current = msg.started;
        else if (msg.done) finished = true;
        else if (msg.escape !== undefined) report.problems.push({ index: msg.index!, kind: 'escape', detail: msg.escape });
        else {
          report.ran++;
          report.outcomes.set(msg.outcome!, (report.outcomes.get(msg.outcome!) ?? 0) + 1);
          report.via.set(msg.via!, (report.via.get(msg.via!) ?? 0) + 1);
          opts.onResult?.(msg as MutantResult);
        }
      }
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (finished) return resolve(null);
      report.problems.push({
        index: current,
        kind: hung ? 'hang' : 'crash',
        detail: hung ? `no answer in ${opts.hangMs ?? 5000} ms` : `exit ${code} ${signal ?? ''}: ${stderr.trim()}`,
      });
      resolve(current + 1);
    });
  });
}

type Mutable = { ran: number; outcomes: Map<string, number>; via: Map<string, number>; problems: Problem[] };

/** Runs mutants [from, from + count) of `seed`, within `timeMs`. */
export async function superviseFuzz(opts: FuzzOptions): Promise<FuzzReport> {
  const report: Mutable = { ran: 0, outcomes: new Map(), via: new Map(), problems: [] };
  const deadline = Date.now() + opts.timeMs;
  const end = (opts.from ?? 0) + opts.count;
  let next: number | null = opts.from ?? 0;
  let children = 0;
  while (next !== null && next < end && Date.now() < deadline && children < MAX_CHILDREN) {
    children++;
    next = await runChild(opts, next, end, deadline, report);
  }
  return { seed: opts.seed, ran: report.ran, outcomes: report.outcomes, via: report.via, problems: report.problems, children };
}

/**
 * Whether the host stops a guest that never returns (the per-call CPU budget): LOOPING_GUEST
 * fails to start with GW_ERR_ABI_BUDGET, instead of keeping its process busy past `hangMs`.
 * Without a budget, a mutant that loops for ever is a known limit of the host, not a load bug.
 */
export function budgetEnforced(hangMs = 5000): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', TSX, CHILD, 'probe'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), hangMs);
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString('utf8'); });
    child.on('close', () => {
      clearTimeout(timer);
      resolve(stdout.includes('"probe":"start:GW_ERR_ABI_BUDGET"'));
    });
  });
}

/** The report as lines: outcomes by count, then every problem with what replays it. */
export function describeReport(r: FuzzReport): string {
  const outcomes = [...r.outcomes].sort((a, b) => b[1] - a[1]).map(([o, n]) => `  ${String(n).padStart(6)}  ${o}`);
  const problems = r.problems.map((p) => `  ${p.kind} at mutant ${p.index} (replay: --seed ${r.seed} --from ${p.index} --count 1): ${p.detail}`);
  return [`seed ${r.seed}: ${r.ran} mutants, ${r.problems.length} problems, ${r.children} child processes`, ...outcomes, ...problems].join('\n');
}
