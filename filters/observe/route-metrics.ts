/**
 * The metrics of the observe filter, defined lazily: the first request of a (route, status class)
 * defines the counter `<prefix>.requests` and the histogram `<prefix>.request_duration_ms` with the
 * tags `route` and `response_code_class`, and their ids are kept for every later request. The ABI
 * has no labels, so the tags travel in the name as Istio's filters write them
 * (`route=.=api;.;response_code_class=.=2xx;.;observe.requests`): the gateway turns them into
 * Prometheus labels, and Envoy extracts them with `stats_tags` regexes.
 */
import { MetricType, defineMetric, incrementMetric, logWarn, recordMetric, statusName } from "../sdk/index";
import { isWordChar } from "./config";

/** Status classes by index: no response at all (the client left first), then 1xx to 5xx. */
const CLASSES: string[] = ["none", "1xx", "2xx", "3xx", "4xx", "5xx"];
const CLASS_COUNT = 6;

/** Ids are never 0 (cpp-host ids are type + 4·n, n ≥ 1): 0 means "not defined yet". */
const UNDEFINED: u32 = 0;
/** Defining failed once: not tried again (and not logged again) for this plugin. */
const FAILED: u32 = 0xffffffff;

/** The class index of a status code: 1–5 for 100–599, 0 for anything else (no response). */
export function statusClass(code: i64): i32 {
  return code >= 100 && code < 600 ? <i32>(code / 100) : 0;
}

/**
 * The route name as a tag value: letters, digits, `_` and `-` are kept, anything else (`.`, `:`,
 * `;`) becomes `_`, so a route name can never end its tag early or add segments. Empty → `unknown`.
 */
export function routeSegment(route: string): string {
  if (route.length == 0) return "unknown";
  let out = route;
  for (let i = 0; i < route.length; i++) {
    const c = route.charCodeAt(i);
    if (!isWordChar(c) && c != 0x2d) {
      out = out.substring(0, i) + "_" + out.substring(i + 1);
    }
  }
  return out;
}

/** The counter and histogram ids of one route, per status class. */
class RouteMetrics {
  counters: StaticArray<u32> = new StaticArray<u32>(CLASS_COUNT);
  histograms: StaticArray<u32> = new StaticArray<u32>(CLASS_COUNT);
  constructor(public segment: string) {}
}

/** Every route's metrics of one plugin (held by its root context). */
export class MetricTable {
  private routes: Map<string, RouteMetrics> = new Map<string, RouteMetrics>();

  constructor(private prefix: string) {}

  /** Counts one request of `route` with status class `cls` that took `latencyMs`. */
  record(route: string, cls: i32, latencyMs: u64): void {
    let metrics: RouteMetrics;
    if (this.routes.has(route)) {
      metrics = this.routes.get(route);
    } else {
      metrics = new RouteMetrics(routeSegment(route));
      this.routes.set(route, metrics);
    }
    let counter = unchecked(metrics.counters[cls]);
    if (counter == UNDEFINED) {
      counter = this.define(MetricType.Counter, "requests", metrics.segment, cls);
      unchecked(metrics.counters[cls] = counter);
    }
    let histogram = unchecked(metrics.histograms[cls]);
    if (histogram == UNDEFINED) {
      histogram = this.define(MetricType.Histogram, "request_duration_ms", metrics.segment, cls);
      unchecked(metrics.histograms[cls] = histogram);
    }
    if (counter != FAILED) incrementMetric(counter, 1);
    if (histogram != FAILED) recordMetric(histogram, latencyMs);
  }

  private define(type: MetricType, what: string, segment: string, cls: i32): u32 {
    const name = "route=.=" + segment + ";.;response_code_class=.=" + CLASSES[cls] + ";.;" + this.prefix + "." + what;
    const r = defineMetric(type, name);
    if (r.ok && r.value != UNDEFINED && r.value != FAILED) return r.value;
    logWarn("observe: cannot define metric " + name + ": " + statusName(r.status) + " (it is not recorded)");
    return FAILED;
  }
}
