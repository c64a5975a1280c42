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

const STARTUP_MS = 60_000;

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
    let started = false;
    let timer: NodeJS.Timeout;
    const arm = (ms: number): void => {
      clearTimeout(timer);
      timer = setTimeout(() => { hung = true; child.kill('SIGKILL'); }, ms);
    };
    // Start-up (tsx, wabt, the seeds) is not a mutant: on a busy machine it takes seconds.
    arm(STARTUP_MS);
    child.stderr.on('data', (c: Buffer) => { stderr = (stderr + c.toString('utf8')).slice(-4000); });
    child.stdout.on('data', (c: Buffer) => {
      arm(opts.hangMs ?? 5000);
      const lines = (partial + c.toString('utf8')).split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        const msg = JSON.parse(line) as { started?: number; done?: boolean; index?: number; escape?: string } & Partial<MutantResult>;
        if (msg.started !== undefined) {
          current = msg.started;
          started = true;
        }
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
      if (!started) {
        // No mutant is at fault: the process did not come up (and would not on a retry either).
        const why = hung ? `no line in ${STARTUP_MS} ms` : `exit ${code} ${signal ?? ''}`;
        report.problems.push({ index: from, kind: 'crash', detail: `the fuzz process did not start (${why}): ${stderr.trim()}` });
        return resolve(null);
      }
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
    let timer = setTimeout(() => child.kill('SIGKILL'), STARTUP_MS);
    child.stdout.on('data', (c: Buffer) => {
      const before = stdout.includes('"ready"');
      stdout += c.toString('utf8');
      // The guest's time counts from here, not from the process start.
      if (!before && stdout.includes('"ready"')) {
        clearTimeout(timer);
        timer = setTimeout(() => child.kill('SIGKILL'), hangMs);
      }
    });
    child.on('close', () => {
      clearTimeout(timer);
      resolve(stdout.includes('"probe":"start:GW_ERR_ABI_BUDGET"'));
    });
  });
}

/**
 * `count` mutants from `from` as the plugins of one configuration, validated in a child
 * (module-fuzz.ts validateMutants): what started and the code of each failure, or the problem.
 */
export function fuzzGeneration(seed: number, from: number, count: number, hangMs = 20_000):
  Promise<{ started: number; failures: string[] } | { problem: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', TSX, CHILD, 'generation', String(seed), String(from), String(count)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let hung = false;
    const kill = (): void => { hung = true; child.kill('SIGKILL'); };
    let timer = setTimeout(kill, STARTUP_MS);
    child.stdout.on('data', (c: Buffer) => {
      const before = stdout.includes('"ready"');
      stdout += c.toString('utf8');
      if (!before && stdout.includes('"ready"')) {
        clearTimeout(timer);
        timer = setTimeout(kill, hangMs);
      }
    });
    child.stderr.on('data', (c: Buffer) => { stderr = (stderr + c.toString('utf8')).slice(-4000); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = stdout.split('\n').find((l) => l.startsWith('{') && !l.includes('"ready"'));
      const msg = line === undefined ? null : JSON.parse(line) as { generation?: { started: number; failures: string[] }; escape?: string };
      if (msg?.generation !== undefined) return resolve(msg.generation);
      resolve({ problem: hung ? `hang: no answer in ${hangMs} ms` : msg?.escape ?? `crash: exit ${code} ${signal ?? ''}: ${stderr.trim()}` });
    });
  });
}

/** The report as lines: outcomes by count, then every problem with what replays it. */
export function describeReport(r: FuzzReport): string {
  const outcomes = [...r.outcomes].sort((a, b) => b[1] - a[1]).map(([o, n]) => `  ${String(n).padStart(6)}  ${o}`);
  const problems = r.problems.map((p) => `  ${p.kind} at mutant ${p.index} (replay: --seed ${r.seed} --from ${p.index} --count 1): ${p.detail}`);
  return [`seed ${r.seed}: ${r.ran} mutants, ${r.problems.length} problems, ${r.children} child processes`, ...outcomes, ...problems].join('\n');
}
