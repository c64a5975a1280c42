/**
 * Metrics (reference §3.12) with Envoy's semantics: counters only go up (record adds), gauges
 * add or set, histograms only record. Ids encode the type in the low two bits as in cpp-host;
 * one id per (type, name) on a VM, at most MAX_GUEST_METRICS of them (metric-table.ts).
 */
import { LogLevel, MetricType, Status } from '../enums.js';
import { MAX_GUEST_METRICS } from '../limits.js';
import type { WasmVm } from '../vm.js';
import type { HostcallTable } from './table.js';

export function metricHostcalls(vm: WasmVm): HostcallTable {
  // One warning per VM: a guest that defines a new name per request would otherwise log per request.
  let warned = false;
  return {
    proxy_define_metric(type: number, namePtr: number, nameLen: number, idPtr: number): number {
      if (type >>> 0 > MetricType.HISTOGRAM) return Status.BAD_ARGUMENT;
      const name = vm.mem.utf8(namePtr, nameLen);
      vm.mem.check(idPtr, 4);
      const sink = vm.ports.metrics;
      const root = vm.target()?.root;
      if (sink === undefined) return Status.UNIMPLEMENTED;
      if (root === undefined) return Status.INTERNAL_FAILURE;
      const id = vm.metrics.define(type as MetricType, name, sink, root);
      if (id === null) {
        // The ABI has no "limit reached" status; the call was well-formed, so not BAD_ARGUMENT.
        if (!warned) {
          warned = true;
          vm.ports.logger.log(LogLevel.WARN, `proxy_define_metric refused "${name}" in module ${vm.name}: at most `
            + `${MAX_GUEST_METRICS} metrics per VM and per plugin; new names answer INTERNAL_FAILURE, defined ones keep working`, root);
        }
        return Status.INTERNAL_FAILURE;
      }
      vm.mem.setU32(idPtr, id);
      return Status.OK;
    },

    proxy_increment_metric(id: number, offset: bigint): number {
      const cell = vm.metrics.cell(id >>> 0);
      if (cell === undefined) return Status.NOT_FOUND;
      const type = id & 3;
      if (type === MetricType.HISTOGRAM) return Status.BAD_ARGUMENT;
      if (type === MetricType.COUNTER && offset <= 0n) return Status.BAD_ARGUMENT;
      cell.add(Number(offset));
      return Status.OK;
    },

    proxy_record_metric(id: number, value: bigint): number {
      const cell = vm.metrics.cell(id >>> 0);
      if (cell === undefined) return Status.NOT_FOUND;
      const v = Number(BigInt.asUintN(64, value));
      const type = id & 3;
      if (type === MetricType.COUNTER) cell.add(v); // Envoy adds; it does not set a counter
      else if (type === MetricType.GAUGE) cell.set(v);
      else cell.observe(v);
      return Status.OK;
    },

    proxy_get_metric(id: number, retPtr: number): number {
      const cell = vm.metrics.cell(id >>> 0);
      if (cell === undefined) return Status.NOT_FOUND;
      if ((id & 3) === MetricType.HISTOGRAM) return Status.BAD_ARGUMENT;
      vm.mem.setU64(retPtr, BigInt(Math.max(0, Math.trunc(cell.value()))));
      return Status.OK;
    },
  };
}
