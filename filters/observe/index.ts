/**
 * observe: counts requests and records their latency per route and status class, as metrics the
 * host exports (proxy_define_metric); see README.md. Built with the SDK in ../sdk.
 */
import { Action, HttpContext, RootContext, getCurrentTimeNanoseconds, getPropertyInt, getPropertyString, logCritical, logInfo,
  registerRootContext } from "../sdk/index";
import { ObserveConfig, parseObserveConfig } from "./config";
import { MetricTable, statusClass } from "./route-metrics";

// The callbacks this filter handles (filters/README.md, "Callbacks").
export * from "../sdk/callbacks/lifecycle";
export * from "../sdk/callbacks/request-headers";
export * from "../sdk/callbacks/log";

const NS_PER_MS: u64 = 1_000_000;
const ROUTE_NAME: string[] = ["xds", "route_name"];
const LEGACY_ROUTE_NAME: string[] = ["route_name"];
const RESPONSE_CODE: string[] = ["response", "code"];
const REQUEST_TIME: string[] = ["request", "time"];

class ObserveRoot extends RootContext {
  config: ObserveConfig = new ObserveConfig();
  metrics: MetricTable = new MetricTable("observe");

  onConfigure(size: usize): bool {
    const outcome = parseObserveConfig(this.getPluginConfiguration());
    if (outcome.config === null) {
      logCritical("observe: " + outcome.error);
      return false;
    }
    this.config = outcome.config!;
    // A new configuration (prefix) starts a new table: ids of the old names are not reused.
    this.metrics = new MetricTable(this.config.prefix);
    logInfo("observe: recording " + this.config.prefix + ".requests and " + this.config.prefix
      + ".request_duration_ms by route and response_code_class");
    return true;
  }

  createHttpContext(contextId: u32): HttpContext {
    return new ObserveStream(contextId, this);
  }
}

class ObserveStream extends HttpContext {
  /** When the request reached this filter (ns since the epoch); 0 when it never did. */
  private startNs: u64 = 0;

  constructor(contextId: u32, private observer: ObserveRoot) {
    super(contextId, observer);
  }

  onRequestHeaders(numHeaders: u32, endOfStream: bool): Action {
    this.startNs = getCurrentTimeNanoseconds();
    return Action.Continue;
  }

  onLog(): void {
    const now = getCurrentTimeNanoseconds();
    let start = this.startNs;
    if (start == 0) {
      // An earlier filter answered before this one ran: the request's own start time.
      const time = getPropertyInt(REQUEST_TIME);
      start = time.ok ? <u64>time.value : now;
    }
    const latencyMs = now > start ? (now - start) / NS_PER_MS : 0;
    const code = getPropertyInt(RESPONSE_CODE);
    this.observer.metrics.record(routeName(), code.ok ? statusClass(code.value) : 0, latencyMs);
  }
}

/** `xds.route_name` (Envoy's current name), else the legacy `route_name`, else "". */
function routeName(): string {
  let name = getPropertyString(ROUTE_NAME);
  if (name === null) name = getPropertyString(LEGACY_ROUTE_NAME);
  return name === null ? "" : name!;
}

registerRootContext((contextId: u32): RootContext => new ObserveRoot(contextId), "observe");
