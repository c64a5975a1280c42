/**
 * The CPU budget of guest calls: no filter may hold the event loop. V8 has no per-call limit
 * (envoy#14126), so the module is instrumented at load (modules/wasm/instrument.ts) to call
 * `budget_check` every BUDGET_CHECK_INTERVAL loop iterations / function entries; this is the host
 * side of that call.
 *
 * The deadline belongs to the outermost guest call: it is armed when the VM's call depth goes
 * 0 → 1 (or the allocator is called at depth 0) and nested calls share it. Start-up (instantiation,
 * _initialize/_start/main, on_context_create/on_vm_start/on_configure of a root) runs under
 * `startCpuMs`, every other callback under `cpuMs`.
 *
 * Arming reads no clock: a clock read costs 25–200 ns and a request makes 6–8 guest calls, most of
 * them a microsecond or less, so the clock would be a large part of the sandbox's cost. Instead the
 * call's clock starts at its first look at the time: the first `budget_check` of the call, or the
 * HOSTCALL_POLL-th hostcall (a guest that loops over hostcalls reaches few guest checks). What
 * runs before that first look, uncounted, is under BUDGET_CHECK_INTERVAL checks of guest code and
 * HOSTCALL_POLL hostcalls: microseconds, against budgets of milliseconds.
 *
 * The budget is of the process's CPU time, judged when the wall clock says it may be spent: once
 * the call's wall time passes the budget, the trap comes only when the process's CPU time since
 * the clock started has passed it too. The CPU time at the start is a reading at most
 * CPU_SAMPLE_MS old (shared by every VM of the process, processCpuUs), less the wall time since
 * that reading, so the call is never charged for CPU spent before it started. A node the kernel
 * takes off the CPU (a busy box, a noisy neighbour, SIGSTOP) would otherwise trap, and fail the
 * VM of, calls that did little work; a guest that loops burns CPU as fast as wall time and is stopped at the budget as before. The CPU
 * time is the whole process's (getrusage: Node 20 cannot read one thread's), so a background GC or
 * compile thread can bring the trap earlier than the guest's own time would, never before the
 * wall clock has passed the budget.
 *
 * NB: once expired, the budget stays expired until the next outermost call is armed: a guest that
 * catches the trap (legacy `catch_all`) meets it again at its very next check, and the VM treats
 * an outermost call that returns after expiry as failed anyway.
 */
import { BUDGET_CHECK_INTERVAL, CPU_SAMPLE_MS, HOSTCALL_POLL } from './limits.js';
import { GuestTrap } from './trap.js';

export interface VmLimits {
  /** Budget of each callback after start-up, in ms of CPU time (see the file header). */
  readonly cpuMs: number;
  /** Budget of each start-up call (see file header). */
  readonly startCpuMs: number;
  /** Cap of the guest's linear memory in MiB. */
  readonly memoryMb: number;
}

/** The process's CPU time (user + system, µs) and the performance.now() it was read at. */
const cpuReading = { us: 0, at: -Infinity };

/** The process's CPU time in µs, read afresh when the last reading is older than `maxAgeMs` at `now`. */
function processCpuUs(now: number, maxAgeMs: number): number {
  if (now - cpuReading.at > maxAgeMs) {
    const usage = process.cpuUsage();
    cpuReading.us = usage.user + usage.system;
    cpuReading.at = now;
  }
  return cpuReading.us;
}

export class CallBudget {
  /** True while start-up calls run (they get startCpuMs). */
  startup = true;
  expired = false;
  /** Hostcalls since the last look at the clock; `pollEvery` is Infinity for a module without the budget. */
  hostcalls = 0;
  pollEvery = Infinity;
  private armed = false;
  private started = false;
  private startedAt = 0;
  /** The process's CPU time (µs) when the clock started, at most: see the file header. */
  private startedCpuUs = 0;
  private budgetMs = 0;
  private elapsedMs = 0;
  /** The outermost call (a guest function or a stage name), named only when a trap is built. */
  private what: unknown = '';

  constructor(readonly limits: VmLimits, private readonly nameOf: (call: unknown) => string) {}

  /** The module calls budget_check: polling hostcalls too is then worth it. */
  enable(): void {
    this.pollEvery = HOSTCALL_POLL;
  }

  /** Arms the budget for an outermost call (no clock read, see the file header). */
  arm(what: unknown): void {
    this.armed = true;
    this.started = false;
    this.expired = false;
    this.hostcalls = 0;
    this.what = what;
    this.budgetMs = this.startup ? this.limits.startCpuMs : this.limits.cpuMs;
  }

  disarm(): void {
    this.armed = false;
  }

  /** The `budget_check` import: the next interval, or a trap once the call is over its budget. */
  readonly check = (): number => {
    if (!this.armed) return BUDGET_CHECK_INTERVAL; // an export called outside vm.call (tests)
    if (this.expired) throw this.trap();
    const now = performance.now();
    if (!this.started) {
      this.started = true;
      this.startedAt = now;
      this.startedCpuUs = processCpuUs(now, CPU_SAMPLE_MS) + (now - cpuReading.at) * 1000;
    } else if (now - this.startedAt > this.budgetMs) {
      const cpuMs = (processCpuUs(now, 0) - this.startedCpuUs) / 1000;
      if (cpuMs <= this.budgetMs) return BUDGET_CHECK_INTERVAL; // off the CPU meanwhile
      this.expired = true;
      this.elapsedMs = now - this.startedAt;
      throw this.trap();
    }
    return BUDGET_CHECK_INTERVAL;
  };

  /** From the hostcall wrapper every `pollEvery` hostcalls; throws the trap like a guest check. */
  poll(): void {
    this.hostcalls = 0;
    this.check();
  }

  /** The trap that ends an over-budget call, naming the budget and the callback. */
  trap(): GuestTrap {
    const field = this.startup ? 'startCpuMs' : 'cpuMs';
    return new GuestTrap(`${this.nameOf(this.what)} ran past its CPU budget: limits.${field} = ${this.budgetMs} ms`
      + ` (stopped after ${this.elapsedMs.toFixed(1)} ms)`, 'budget');
  }
}
