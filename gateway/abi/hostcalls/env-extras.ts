/**
 * Non-Proxy-Wasm imports that real toolchains emit in module `env` (reference §2.4, §2.5).
 */
import { LogLevel } from '../enums.js';
import { GuestTrap } from '../trap.js';
import type { WasmVm } from '../vm.js';
import type { HostcallTable } from './table.js';

/** An AssemblyScript string: UTF-16LE, byte length as u32 at ptr - 4; 0 means none. */
function asString(vm: WasmVm, ptr: number): string {
  if (ptr === 0 || ptr < 4) return '';
  try {
    const len = vm.mem.u32(ptr - 4);
    vm.mem.check(ptr, len);
    return vm.mem.current().toString('utf16le', ptr >>> 0, (ptr >>> 0) + len);
  } catch {
    return '<unreadable>';
  }
}

export function envExtras(vm: WasmVm): HostcallTable {
  return {
    /** emscripten tells the host its memory grew; our views re-derive on every access anyway. */
    emscripten_notify_memory_growth(): void {},

    pthread_equal: (a: number, b: number): number => (a === b ? 1 : 0),

    /** AssemblyScript's default abort: decode, log at critical, then trap (it must not return). */
    abort(msgPtr: number, filePtr: number, line: number, column: number): never {
      const message = `abort: ${asString(vm, msgPtr) || '(no message)'} at ${asString(vm, filePtr) || '?'}:${line}:${column}`;
      vm.lastCritical = message;
      vm.ports.logger.log(LogLevel.CRITICAL, message, vm.target()?.root ?? null);
      throw new GuestTrap(message, 'abort');
    },
  };
}
