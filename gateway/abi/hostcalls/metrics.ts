/**
 * Metrics (reference §3.12) with Envoy's semantics: counters only go up (record adds), gauges
 * add or set, histograms only record. Ids encode the type in the low two bits as in cpp-host.
 */
import { MetricType, Status } from '../enums.js';
import type { WasmVm } from '../vm.js';
import type { HostcallTable } from './table.js';

export function metricHostcalls(vm: WasmVm): HostcallTable {
  return {
    proxy_define_metric(type: number, namePtr: number, nameLen: number, idPtr: number): number {
      if (type >>> 0 > MetricType.HISTOGRAM) return Status.BAD_ARGUMENT;
      const name = vm.mem.utf8(namePtr, nameLen);
      vm.mem.check(idPtr, 4);
      const sink = vm.ports.metrics;
      const root = vm.target()?.root;
      if (sink === undefined) return Status.UNIMPLEMENTED;
      if (root === undefined) return Status.INTERNAL_FAILURE;
      const id = vm.metricId(type);
      vm.metricCells.set(id, sink.define(type as MetricType, name, root));
      vm.mem.setU32(idPtr, id);
      return Status.OK;
    },

    proxy_increment_metric(id: number, offset: bigint): number {
      const cell = vm.metricCells.get(id >>> 0);
      if (cell === undefined) return Status.NOT_FOUND;
      const type = id & 3;
      if (type === MetricType.HISTOGRAM) return Status.BAD_ARGUMENT;
      if (type === MetricType.COUNTER && offset <= 0n) return Status.BAD_ARGUMENT;
      cell.add(Number(offset));
      return Status.OK;
    },

    proxy_record_metric(id: number, value: bigint): number {
      const cell = vm.metricCells.get(id >>> 0);
      if (cell === undefined) return Status.NOT_FOUND;
      const v = Number(BigInt.asUintN(64, value));
      const type = id & 3;
      if (type === MetricType.COUNTER) cell.add(v); // Envoy adds; it does not set a counter
      else if (type === MetricType.GAUGE) cell.set(v);
      else cell.observe(v);
      return Status.OK;
    },

    proxy_get_metric(id: number, retPtr: number): number {
      const cell = vm.metricCells.get(id >>> 0);
      if (cell === undefined) return Status.NOT_FOUND;
      if ((id & 3) === MetricType.HISTOGRAM) return Status.BAD_ARGUMENT;
      vm.mem.setU64(retPtr, BigInt(Math.max(0, Math.trunc(cell.value()))));
      return Status.OK;
    },
  };
}
