/**
 * The import object every module is linked against: all `env.proxy_*` hostcalls of every ABI
 * version (being generous costs nothing and avoids link failures, reference §1.3), the toolchain
 * extras, and the 45 WASI preview1 functions under both `wasi_snapshot_preview1` and
 * `wasi_unstable`. Each function is wrapped once here so that
 *   - a hostcall not allowed in the current phase (start-up, allocation) traps (§2.1.1), and
 *   - no hostcall ever throws into the guest: a bad pointer is INVALID_MEMORY_ACCESS, a host bug
 *     is INTERNAL_FAILURE; only real traps (proc_exit, abort, restricted) unwind the guest.
 */
import { bufferHostcalls } from './hostcalls/buffers.js';
import { calloutHostcalls } from './hostcalls/callouts.js';
import { envExtras } from './hostcalls/env-extras.js';
import { loggingHostcalls } from './hostcalls/logging.js';
import { mapHostcalls } from './hostcalls/maps.js';
import { metricHostcalls } from './hostcalls/metrics.js';
import { propertyHostcalls } from './hostcalls/properties.js';
import { sharedStateHostcalls } from './hostcalls/shared-state.js';
import { streamControlHostcalls } from './hostcalls/stream-control.js';
import type { Hostcall, HostcallTable } from './hostcalls/table.js';
import { WASI_ALLOWED_DURING_ALLOC, WASI_ALLOWED_DURING_START, wasiFunctions } from './wasi.js';
import { Phase } from './phase.js';
import type { WasmVm } from './vm.js';

/** Bit per phase in which a function may run; RUNNING is always allowed. */
const IN_START = 1 << Phase.STARTING;
const IN_ALLOC = 1 << Phase.ALLOCATING;

/** env functions allowed outside RUNNING (cpp-host's lists, plus growth notices during malloc). */
const ENV_ALLOWED: Readonly<Record<string, number>> = {
  proxy_log: IN_START | IN_ALLOC,
  emscripten_notify_memory_growth: IN_START | IN_ALLOC,
};

export const WASI_MODULES = ['wasi_snapshot_preview1', 'wasi_unstable'] as const;

function guard(vm: WasmVm, name: string, fn: Hostcall, allowed: number): Hostcall {
  const budget = vm.budget;
  // Fixed arity instead of rest parameters: no arguments array on the hot path.
  return (a?: unknown, b?: unknown, c?: unknown, d?: unknown, e?: unknown, f?: unknown, g?: unknown,
    h?: unknown, i?: unknown, j?: unknown, k?: unknown, l?: unknown) => {
    if (vm.phase !== Phase.RUNNING && (allowed & (1 << vm.phase)) === 0) vm.restricted(name);
    // The CPU budget looks at the clock every HOSTCALL_POLL hostcalls too (budget.ts); its trap unwinds the guest.
    if (++budget.hostcalls >= budget.pollEvery) budget.poll();
    try {
      return fn(a, b, c, d, e, f, g, h, i, j, k, l);
    } catch (err) {
      return vm.hostcallError(name, err);
    }
  };
}

/** Every env function the host provides (hostcalls and toolchain extras), unwrapped. */
export function envFunctions(vm: WasmVm): HostcallTable {
  // Object.assign, not object spread: V8 builds a 46-key object from nine spreads ~10x slower,
  // and this runs once per VM start (bench/README.md, row 3).
  return Object.assign({},
    loggingHostcalls(vm),
    streamControlHostcalls(vm),
    bufferHostcalls(vm),
    mapHostcalls(vm),
    calloutHostcalls(vm),
    sharedStateHostcalls(vm),
    metricHostcalls(vm),
    propertyHostcalls(vm),
    envExtras(vm),
  );
}

function wrapAll(vm: WasmVm, table: HostcallTable, allowedOf: (name: string) => number): HostcallTable {
  const out: HostcallTable = {};
  for (const name of Object.keys(table)) out[name] = guard(vm, name, table[name], allowedOf(name));
  return out;
}

export function buildImports(vm: WasmVm): WebAssembly.Imports {
  const env = wrapAll(vm, envFunctions(vm), (name) => ENV_ALLOWED[name] ?? 0);
  // NB: proc_exit is let through during start-up (cpp-host traps it as restricted): it unwinds the
  // guest either way, and a WASI command's `_start` may end with proc_exit(0), which vm.ts treats as
  // a clean start; any other code fails start-up naming the exit code instead of "restricted".
  const wasi = wrapAll(vm, wasiFunctions({
    mem: vm.mem,
    environment: () => vm.environment,
    log: (level, message) => vm.ports.logger.log(level, message, vm.target()?.root ?? null),
    wallNs: () => vm.clock.wallNs(),
    monotonicNs: () => vm.clock.monotonicNs(),
  }), (name) => (WASI_ALLOWED_DURING_START.has(name) || name === 'proc_exit' ? IN_START : 0)
    | (WASI_ALLOWED_DURING_ALLOC.has(name) ? IN_ALLOC : 0));
  return { env, wasi_snapshot_preview1: wasi, wasi_unstable: wasi };
}
