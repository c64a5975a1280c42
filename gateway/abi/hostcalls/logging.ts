/** Logging and time (reference §3.2, §3.3). */
import { LogLevel, Status } from '../enums.js';
import { MAX_LOG_MESSAGE_BYTES } from '../limits.js';
import type { WasmVm } from '../vm.js';
import type { HostcallTable } from './table.js';

export function loggingHostcalls(vm: WasmVm): HostcallTable {
  return {
    proxy_log(level: number, ptr: number, len: number): number {
      if (level >>> 0 > LogLevel.CRITICAL) return Status.BAD_ARGUMENT;
      // The whole range must be guest memory (cpp-host: INVALID_MEMORY_ACCESS); only then cut it.
      if (len !== 0) vm.mem.check(ptr, len);
      const message = vm.mem.utf8(ptr, Math.min(len >>> 0, MAX_LOG_MESSAGE_BYTES));
      // Kept for failure reports: a Rust panic hook logs the panic message at critical.
      if (level === LogLevel.CRITICAL) vm.lastCritical = message;
      if (level >= vm.ports.logger.level()) {
        vm.ports.logger.log(level as LogLevel, message, vm.target()?.root ?? null);
      }
      return Status.OK;
    },

    proxy_get_log_level(retPtr: number): number {
      vm.mem.setU32(retPtr, vm.ports.logger.level());
      return Status.OK;
    },

    proxy_get_current_time_nanoseconds(retPtr: number): number {
      vm.mem.setU64(retPtr, vm.clock.wallNs());
      return Status.OK;
    },

    /** Per root; from a stream it sets the stream's root timer. Envoy ticks one period after. */
    proxy_set_tick_period_milliseconds(periodMs: number): number {
      const root = vm.target()?.root;
      if (root === undefined) return Status.BAD_ARGUMENT;
      root.tick?.cancel();
      root.tick = null;
      periodMs >>>= 0;
      if (periodMs > 0) {
        root.tick = vm.scheduler.every(periodMs, () => {
          vm.callRoot(root, vm.callbacks.onTick, root.id);
        });
      }
      return Status.OK;
    },
  };
}
