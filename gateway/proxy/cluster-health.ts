/**
 * The health of a cluster's endpoints: the active probes of each (health-check.ts), the ejections
 * of outlier detection and their bound, the count the balancer reads (`down`), one log line per
 * change of an endpoint, and the figures of /metrics and GET /clusters.
 *
 * Panic mode: when no endpoint is in service the balancer routes to all of them, as Envoy does
 * below its healthy panic threshold. Envoy's threshold is 50% of the endpoints by default (it
 * spares the last healthy ones an overload, at the price of sending traffic to failing ones as
 * soon as half are down); here it is 0: traffic stays on the endpoints in service as long as one
 * is left, which suits the small clusters of an edge box (two or three endpoints).
 */
import type { ClusterConfig, OutlierDetectionConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import { EndpointHealth, type EjectionRule, type HealthEvent, type HealthOwner } from './endpoint-health.js';
import { HealthProbe } from './health-check.js';

const REASONS: Record<EjectionRule, string> = {
  consecutive5xx: 'consecutive 5xx answers or gateway failures',
  consecutiveGatewayFailure: 'consecutive gateway failures (connect failure, reset, timeout, 502/503/504)',
};

/** An endpoint's line of GET /clusters. */
export interface EndpointReport {
  readonly endpoint: string;
  /** healthy: in service; unhealthy: failing its health checks; ejected: by outlier detection. */
  readonly health: 'healthy' | 'unhealthy' | 'ejected';
  readonly failedHealthChecks: boolean;
  readonly ejected: boolean;
  /** ISO time the ejection ends, or null. */
  readonly ejectedUntil: string | null;
  readonly ejections: number;
  readonly consecutive5xx: number;
  readonly consecutiveGatewayFailures: number;
  readonly checks: Readonly<Record<string, number>>;
  readonly lastCheck: string | null;
}

export class ClusterHealth implements HealthOwner {
  readonly endpoints: readonly EndpointHealth[];
  /** Endpoints out of service now (failing checks or ejected): 0 is the balancer's fast path. */
  down = 0;
  ejected = 0;
  readonly outlier: OutlierDetectionConfig | null;
  readonly healthyThreshold: number;
  readonly unhealthyThreshold: number;
  private readonly probes: HealthProbe[] = [];
  private panic = false;

  constructor(private readonly config: ClusterConfig, private readonly logger: Logger) {
    this.outlier = config.outlierDetection ?? null;
    this.healthyThreshold = config.healthCheck?.healthyThreshold ?? 1;
    this.unhealthyThreshold = config.healthCheck?.unhealthyThreshold ?? 1;
    this.endpoints = config.endpoints.map((origin) => new EndpointHealth(origin, this));
  }

  /** Starts the active health checks, when the cluster has them (the first probes within a tenth of an interval). */
  start(): void {
    const check = this.config.healthCheck;
    if (check === undefined || this.probes.length > 0) return;
    for (const health of this.endpoints) {
      this.probes.push(new HealthProbe(new URL(health.origin), check, this.config.http2, (result, detail) => health.checked(result, detail)));
    }
  }

  /** Whether the balancer routes to every endpoint (none in service): panic mode. */
  get inPanic(): boolean {
    return this.panic;
  }

  /**
   * Ejects `endpoint` unless that would take out more than maxEjectionPercent of the endpoints
   * (rounded down, but at least one may be ejected, as in Envoy) or the last endpoint in service
   * by outlier detection's count.
   */
  ejectionWanted(endpoint: EndpointHealth, rule: EjectionRule): void {
    const o = this.outlier!;
    const n = this.endpoints.length;
    const allowed = Math.min(n - 1, Math.max(1, Math.floor((o.maxEjectionPercent * n) / 100)));
    if (this.ejected >= allowed) return;
    const ms = endpoint.eject(o);
    this.ejected++;
    const count = rule === 'consecutive5xx' ? o.consecutive5xx : o.consecutiveGatewayFailure;
    this.changed(endpoint, 'ejected', `${count} ${REASONS[rule]}: ejected for ${ms} ms (ejection ${endpoint.ejections})`);
  }

  changed(endpoint: EndpointHealth, event: HealthEvent, reason: string): void {
    if (event === 'returned') this.ejected--;
    const available = !endpoint.failedChecks && !endpoint.ejected;
    if (available !== endpoint.available) {
      endpoint.available = available;
      this.down += available ? -1 : 1;
    }
    const fields = { cluster: this.config.name, endpoint: endpoint.origin, reason };
    if (event === 'unhealthy' || event === 'ejected') this.logger.warn(fields, `upstream endpoint ${event}`);
    else this.logger.info(fields, `upstream endpoint ${event}`);
    const panic = this.down === this.endpoints.length;
    if (panic !== this.panic) {
      this.panic = panic;
      if (panic) this.logger.warn({ cluster: this.config.name }, 'upstream cluster in panic mode: no endpoint is in service, routing to all of them');
      else this.logger.info({ cluster: this.config.name }, 'upstream cluster out of panic mode');
    }
  }

  /** Stops every probe and ejection timer. Once the cluster closes nothing is probed any more. */
  stop(): void {
    for (const probe of this.probes) probe.stop();
    for (const endpoint of this.endpoints) endpoint.stop();
  }

  report(): EndpointReport[] {
    return this.endpoints.map((e) => ({
      endpoint: e.origin,
      health: e.failedChecks ? 'unhealthy' : e.ejected ? 'ejected' : 'healthy',
      failedHealthChecks: e.failedChecks,
      ejected: e.ejected,
      ejectedUntil: e.ejected ? new Date(e.ejectedUntil).toISOString() : null,
      ejections: e.ejections,
      consecutive5xx: e.consecutive5xx,
      consecutiveGatewayFailures: e.consecutiveGatewayFailures,
      checks: { ...e.checks },
      lastCheck: e.lastCheck,
    }));
  }
}
