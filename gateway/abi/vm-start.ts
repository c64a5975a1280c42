/**
 * Start-up of an instantiated module (reference §2.1): a reactor's `_initialize` (then `main(0, 0)`
 * or `__main_void` when the toolchain exports one), or a WASI command's `_start`. Errors become
 * GatewayErrors naming the module and the stage; the VM arms the start-up budget around them.
 */
import { exportedFunction, type GuestFn } from './callbacks.js';
import { GatewayError } from '../errors.js';
import { ProcExit, describeTrap, failureText } from './trap.js';

/** The start function a module runs, named as messages and the budget name it. */
export function startStage(exports: WebAssembly.Exports): '_initialize' | '_start' {
  return exportedFunction(exports, '_initialize') !== null ? '_initialize' : '_start';
}

/** Runs the module's start functions; what the guest throws propagates. */
export function runStartFunctions(exports: WebAssembly.Exports): void {
  const initialize = exportedFunction(exports, '_initialize');
  if (initialize !== null) {
    initialize();
    const main = exportedFunction(exports, 'main');
    const mainVoid = exportedFunction(exports, '__main_void');
    if (main !== null && main.length === 2) main(0, 0);
    else if (mainVoid !== null) mainVoid();
    return;
  }
  const startFn = exportedFunction(exports, '_start');
  if (startFn !== null) runCommand(startFn);
}

/** A WASI command's `_start` may end with proc_exit(0): that is a clean exit, not a failure. */
function runCommand(startFn: GuestFn): void {
  try {
    startFn();
  } catch (err) {
    if (!(err instanceof ProcExit && err.code === 0)) throw err;
  }
}

/** A start-up failure: budget and stack overruns keep their codes, any other trap is GW_ERR_ABI_START. */
export function startError(module: string, stage: string, err: unknown, guestMessage: string | null): GatewayError {
  const failure = describeTrap(err, guestMessage);
  const code = failure.code === 'GW_ERR_ABI_BUDGET' || failure.code === 'GW_ERR_ABI_STACK' ? failure.code : 'GW_ERR_ABI_START';
  return new GatewayError(code, `module ${module}: ${stage} failed: ${failureText(failure)}`, { cause: err });
}
