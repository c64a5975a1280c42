/**
 * The health of one endpoint, as the balancer reads it (`available`, one boolean per pick) and as
 * the two detectors write it:
 *
 * - active health checks (health-check.ts) report each probe to `checked`: `unhealthyThreshold`
 *   failures in a row take the endpoint out of service, `healthyThreshold` passes in a row put it
 *   back; a pass resets the failure run and a failure the pass run, so an endpoint flapping
 *   between the two never changes state below the thresholds (Envoy's health checker);
 * - outlier detection counts the outcomes of forwarded requests (`observe`, `observeFailure`,
 *   called once per upstream answer by the endpoint's queue, upstream-queue.ts) and asks its
 *   cluster to eject the endpoint after a run of failures (Envoy's consecutive_5xx and
 *   consecutive_gateway_failure, without split_external_local_origin_errors: a connect failure,
 *   reset or timeout counts toward both rules).
 *
 * Every endpoint starts healthy, not "unknown" as in Envoy: a reload (which builds new clusters,
 * with fresh health) then moves no traffic, and an endpoint that is down at start leaves service
 * after `unhealthyThreshold` probes, or sooner through outlier detection.
 */
import type { OutlierDetectionConfig } from '../config/schema.js';
import type { UpstreamOutcomes } from './upstream-queue.js';

export type CheckResult = 'success' | 'failure' | 'network_failure' | 'timeout';

/** What the endpoint tells its cluster (cluster-health.ts): state changes, and ejection requests. */
export interface HealthOwner {
  readonly outlier: OutlierDetectionConfig | null;
  readonly healthyThreshold: number;
  readonly unhealthyThreshold: number;
  /** `rule` broke its threshold: eject `endpoint` if maxEjectionPercent allows it. */
  ejectionWanted(endpoint: EndpointHealth, rule: EjectionRule): void;
  /** `endpoint` failed or passed its health checks, was ejected or returned. */
  changed(endpoint: EndpointHealth, event: HealthEvent, reason: string): void;
}

export type EjectionRule = 'consecutive5xx' | 'consecutiveGatewayFailure';
export type HealthEvent = 'unhealthy' | 'healthy' | 'ejected' | 'returned';

/**
 * Errors that say nothing about the endpoint: the gateway's own aborts, a pool it closed, a
 * request it could not send. Everything else undici reports (refused, reset, timeouts, a garbled
 * answer) is a gateway failure of the endpoint.
 */
const LOCAL_ERRORS = new Set(['UND_ERR_ABORTED', 'UND_ERR_CLOSED', 'UND_ERR_DESTROYED', 'UND_ERR_INVALID_ARG',
  'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH', 'UND_ERR_NOT_SUPPORTED', 'cluster_overflow', 'queue_timeout']);

/**
 * How long the `count`-th ejection in a row lasts: base × count, at most the larger of max and
 * base (Envoy's base_ejection_time and max_ejection_time).
 */
export function ejectionMs(o: OutlierDetectionConfig, count: number): number {
  return Math.min(o.baseEjectionTimeMs * count, Math.max(o.maxEjectionTimeMs, o.baseEjectionTimeMs));
}

function returnFromEjection(health: EndpointHealth): void {
  health.returnFromEjection();
}

export class EndpointHealth implements UpstreamOutcomes {
  /** In service: its health checks pass and it is not ejected. The balancer reads this on each pick. */
  available = true;
  /** Failed `unhealthyThreshold` probes in a row and has not passed `healthyThreshold` since. */
  failedChecks = false;
  ejected = false;
  /** When the ejection ends (Date.now() ms); 0 while not ejected. */
  ejectedUntil = 0;
  /** Times ejected since the cluster was built (the metric). */
  ejections = 0;
  consecutive5xx = 0;
  consecutiveGatewayFailures = 0;
  /** Probes by result, and what the last one saw ("status 503", "ECONNREFUSED", "timeout"). */
  readonly checks: Record<CheckResult, number> = { success: 0, failure: 0, network_failure: 0, timeout: 0 };
  lastCheck: string | null = null;
  /** Envoy's ejection multiplier: up one per ejection, down one per base ejection time in service. */
  private multiplier = 0;
  private returnedAt = 0;
  private passes = 0;
  private failures = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(readonly origin: string, private readonly owner: HealthOwner) {}

  // ---- outlier detection: once per upstream answer (the request path) ------------------------

  /** The endpoint answered with `status` (any status: a response is an outcome). */
  observe(status: number): void {
    if (status < 500) {
      this.consecutive5xx = 0;
      this.consecutiveGatewayFailures = 0;
      return;
    }
    if (this.ejected) return;
    this.consecutive5xx++;
    // Envoy's gateway errors: 502, 503 and 504 answers count toward both rules.
    if (status >= 502 && status <= 504) this.consecutiveGatewayFailures++;
    else this.consecutiveGatewayFailures = 0;
    this.judge(false);
  }

  /** A forwarded request to the endpoint failed with undici's `code` (connect failure, reset, timeout…). */
  observeFailure(code: string): void {
    if (this.ejected || LOCAL_ERRORS.has(code)) return;
    this.consecutive5xx++;
    this.consecutiveGatewayFailures++;
    this.judge(true);
  }

  private judge(gatewayFirst: boolean): void {
    const o = this.owner.outlier;
    if (o === null) return;
    const gateway = o.consecutiveGatewayFailure > 0 && this.consecutiveGatewayFailures >= o.consecutiveGatewayFailure;
    const fivexx = o.consecutive5xx > 0 && this.consecutive5xx >= o.consecutive5xx;
    if (gateway && (gatewayFirst || !fivexx)) this.owner.ejectionWanted(this, 'consecutiveGatewayFailure');
    else if (fivexx) this.owner.ejectionWanted(this, 'consecutive5xx');
  }

  /** Ejects the endpoint (its cluster allowed it); returns the ejection's length in ms. */
  eject(o: OutlierDetectionConfig): number {
    const now = Date.now();
    if (this.returnedAt > 0) this.multiplier = Math.max(0, this.multiplier - Math.floor((now - this.returnedAt) / o.baseEjectionTimeMs));
    // Past the longest ejection the multiplier stops growing (Envoy), so that it can come down again.
    const cap = Math.ceil(Math.max(o.maxEjectionTimeMs, o.baseEjectionTimeMs) / o.baseEjectionTimeMs);
    this.multiplier = Math.min(this.multiplier + 1, cap);
    const ms = ejectionMs(o, this.multiplier);
    this.ejected = true;
    this.ejectedUntil = now + ms;
    this.ejections++;
    this.consecutive5xx = 0;
    this.consecutiveGatewayFailures = 0;
    this.timer = setTimeout(returnFromEjection, ms, this);
    this.timer.unref();
    return ms;
  }

  /** The ejection time is over: back in service, unless its health checks fail. */
  returnFromEjection(): void {
    if (!this.ejected) return;
    this.timer = null;
    this.ejected = false;
    this.ejectedUntil = 0;
    this.returnedAt = Date.now();
    this.owner.changed(this, 'returned', 'the ejection time is over');
  }

  // ---- active health checks ----------------------------------------------------------------

  /** One probe's result; `detail` says what it saw. */
  checked(result: CheckResult, detail: string): void {
    this.checks[result]++;
    this.lastCheck = detail;
    if (result === 'success') {
      this.failures = 0;
      if (this.failedChecks && ++this.passes >= this.owner.healthyThreshold) {
        this.passes = 0;
        this.failedChecks = false;
        this.owner.changed(this, 'healthy', `${this.owner.healthyThreshold} health checks passed in a row`);
      }
      return;
    }
    this.passes = 0;
    if (!this.failedChecks && ++this.failures >= this.owner.unhealthyThreshold) {
      this.failures = 0;
      this.failedChecks = true;
      this.owner.changed(this, 'unhealthy', `${this.owner.unhealthyThreshold} health checks failed in a row (last: ${detail})`);
    }
  }

  /** Stops the ejection timer (the cluster is closing). */
  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}
