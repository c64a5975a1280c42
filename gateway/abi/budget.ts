/**
 * The wall-clock budget of guest calls (issue: "no filter can take a node down"). V8 has no
 * per-call limit (envoy#14126), so the module is instrumented at load (modules/wasm/instrument.ts)
 * to call `budget_check` every BUDGET_CHECK_INTERVAL loop heads / function entries; this is the
 * host side of that call.
 *
 * The deadline belongs to the outermost guest call: it is armed when the VM's call depth goes
 * 0 → 1 (or the allocator is called at depth 0) and nested calls share it. Start-up (instantiation,
 * _initialize/_start/main, on_context_create/on_vm_start/on_configure of a root) runs under
 * `startCpuMs`, every other callback under `cpuMs`.
 *
 * NB: once expired, the budget stays expired until the next outermost call is armed: a guest that
 * catches the trap (legacy `catch_all`) meets it again at its very next check, and the VM treats
 * an outermost call that returns after expiry as failed anyway.
 */
import { BUDGET_CHECK_INTERVAL } from './limits.js';
import { GuestTrap } from './trap.js';

export interface VmLimits {
  /** Budget of each callback after start-up, in ms of wall-clock time. */
  readonly cpuMs: number;
  /** Budget of each start-up call (see file header). */
  readonly startCpuMs: number;
  /** Cap of the guest's linear memory in MiB. */
  readonly memoryMb: number;
}

export class CallBudget {
  /** performance.now() after which the running outermost call is over budget; Infinity when idle. */
  private deadline = Infinity;
  private expiredAt = 0;
  /** True while start-up calls run (they get startCpuMs). */
  startup = true;
  expired = false;
  /** The outermost call (a guest function or a stage name), named only when a trap is built. */
  private what: unknown = '';

  constructor(readonly limits: VmLimits, private readonly nameOf: (call: unknown) => string) {}

  /** Arms the deadline for an outermost call. */
  arm(what: unknown): void {
    this.expired = false;
    this.expiredAt = 0;
    this.what = what;
    this.deadline = performance.now() + (this.startup ? this.limits.startCpuMs : this.limits.cpuMs);
  }

  disarm(): void {
    this.deadline = Infinity;
  }

  /** The `budget_check` import: the next interval, or a trap once the deadline has passed. */
  readonly check = (): number => {
    if (this.expired) throw this.trap();
    const now = performance.now();
    if (now > this.deadline) {
      this.expired = true;
      this.expiredAt = now;
      throw this.trap();
    }
    return BUDGET_CHECK_INTERVAL;
  };

  /** The trap that ends an over-budget call, naming the budget and the callback. */
  trap(): GuestTrap {
    const [field, ms] = this.startup ? ['startCpuMs', this.limits.startCpuMs] : ['cpuMs', this.limits.cpuMs];
    const over = this.expiredAt > 0 ? ` (stopped ${(this.expiredAt - this.deadline + ms).toFixed(1)} ms in)` : '';
    return new GuestTrap(`${this.nameOf(this.what)} ran past its CPU budget: limits.${field} = ${ms} ms${over}`, 'budget');
  }
}
