/**
 * Metrics (reference §3.12): counters, gauges and histograms the host exports (edge-gateway on
 * its metrics endpoint, Envoy under the `wasmcustom.` prefix). Define them once, in `onVmStart`
 * or `onConfigure`, and keep the id; defining the same name again refers to the same metric.
 */
import { proxy_define_metric, proxy_get_metric, proxy_increment_metric, proxy_record_metric } from "./imports";
import { RET_U32, RET_U64, stage, staged0, staged0Len } from "./memory";
import { MetricType, Result, Status } from "./types";

/** Defines a metric; the id to use with the calls below (`BadArgument` for an unknown type). */
export function defineMetric(type: MetricType, name: string): Result<u32> {
  stage(name);
  store<u32>(RET_U32, 0);
  const status = <Status>proxy_define_metric(<u32>type, staged0, staged0Len, RET_U32);
  return new Result<u32>(status, load<u32>(RET_U32));
}

/** Counter: adds `offset` (> 0). Gauge: adds or subtracts. Histogram: `BadArgument`. */
export function incrementMetric(metricId: u32, offset: i64): Status {
  return <Status>proxy_increment_metric(metricId, offset);
}

/** Gauge: sets. Histogram: records one sample. Counter: adds (Envoy). */
export function recordMetric(metricId: u32, value: u64): Status {
  return <Status>proxy_record_metric(metricId, value);
}

/** Current value of a counter or gauge (`BadArgument` for a histogram). */
export function getMetric(metricId: u32): Result<u64> {
  store<u64>(RET_U64, 0);
  const status = <Status>proxy_get_metric(metricId, RET_U64);
  return new Result<u64>(status, load<u64>(RET_U64));
}

/** A metric defined once and used by id; an undefined metric (id 0) ignores every call. */
class Metric {
  readonly id: u32;
  constructor(type: MetricType, readonly name: string) {
    const r = defineMetric(type, name);
    this.id = r.ok ? r.value : 0;
  }
}

/** A monotonically increasing count. */
export class Counter extends Metric {
  constructor(name: string) {
    super(MetricType.Counter, name);
  }
  increment(offset: i64 = 1): Status {
    return this.id == 0 ? Status.NotFound : incrementMetric(this.id, offset);
  }
  get(): u64 {
    return this.id == 0 ? 0 : getMetric(this.id).value;
  }
}

/** A value that goes up and down. */
export class Gauge extends Metric {
  constructor(name: string) {
    super(MetricType.Gauge, name);
  }
  set(value: u64): Status {
    return this.id == 0 ? Status.NotFound : recordMetric(this.id, value);
  }
  add(offset: i64): Status {
    return this.id == 0 ? Status.NotFound : incrementMetric(this.id, offset);
  }
  get(): u64 {
    return this.id == 0 ? 0 : getMetric(this.id).value;
  }
}

/** A distribution of samples (latencies, sizes). */
export class Histogram extends Metric {
  constructor(name: string) {
    super(MetricType.Histogram, name);
  }
  record(value: u64): Status {
    return this.id == 0 ? Status.NotFound : recordMetric(this.id, value);
  }
}
