/**
 * The edge-protection metrics: connections a listener closed at accept (maxConnections), each
 * cluster's admission queue (requests waiting for a pooled connection, overflows, queue
 * timeouts) and each endpoint's health (health checks, outlier ejections). The listeners and
 * clusters keep the counts; these read them on each scrape, so nothing is counted twice on the
 * request path.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { MetricsSources } from './metrics.js';

export function edgeMetrics(sources: MetricsSources, registers: Registry[]): void {
  const listeners = (): ReturnType<NonNullable<MetricsSources['listeners']>> => sources.listeners?.() ?? [];
  const clusters = (): ReturnType<NonNullable<MetricsSources['clusters']>> => sources.clusters?.() ?? [];
  new Counter({
    name: 'edge_gateway_connections_dropped_total', labelNames: ['listener'], registers,
    help: 'Connections a listener closed at accept because it had maxConnections open',
    collect() {
      this.reset();
      for (const l of listeners()) this.inc({ listener: l.listener }, l.dropped);
    },
  });
  new Gauge({
    name: 'edge_gateway_upstream_pending_requests', labelNames: ['cluster'], registers,
    help: 'Requests waiting in a cluster\'s queue for a pooled connection now (bounded by maxPendingRequests)',
    collect() {
      this.reset();
      for (const c of clusters()) this.set({ cluster: c.cluster }, c.pending);
    },
  });
  const refused = (name: string, key: 'overflows' | 'timeouts', help: string): void => {
    new Counter({
      name, help, labelNames: ['cluster'], registers,
      collect() {
        this.reset();
        for (const c of clusters()) if (c[key] > 0) this.inc({ cluster: c.cluster }, c[key]);
      },
    });
  };
  refused('edge_gateway_upstream_overflows_total', 'overflows', 'Requests answered 503 because the cluster\'s queue was full (cluster_overflow)');
  refused('edge_gateway_upstream_queue_timeouts_total', 'timeouts', 'Requests answered 503 after waiting queueTimeoutMs for a connection (queue_timeout)');
  endpointMetrics(sources, registers);
}

/** Each endpoint's health: in service or not, ejections, active health-check probes. */
function endpointMetrics(sources: MetricsSources, registers: Registry[]): void {
  const endpoints = (): ReturnType<NonNullable<MetricsSources['endpoints']>> => sources.endpoints?.() ?? [];
  new Gauge({
    name: 'edge_gateway_upstream_endpoint_healthy', labelNames: ['cluster', 'endpoint'], registers,
    // A box: 1 only while every worker sends the endpoint traffic.
    aggregator: 'min',
    help: '1 while an endpoint is in service (its health checks pass and outlier detection has not ejected it), else 0 (in panic mode, all 0, every endpoint still gets traffic)',
    collect() {
      this.reset();
      for (const e of endpoints()) this.set({ cluster: e.cluster, endpoint: e.endpoint }, e.healthy ? 1 : 0);
    },
  });
  new Counter({
    name: 'edge_gateway_upstream_ejections_total', labelNames: ['cluster', 'endpoint'], registers,
    help: 'Times outlier detection ejected an endpoint (clusters with outlierDetection)',
    collect() {
      this.reset();
      for (const e of endpoints()) if (e.ejections !== null) this.inc({ cluster: e.cluster, endpoint: e.endpoint }, e.ejections);
    },
  });
  new Counter({
    name: 'edge_gateway_upstream_health_checks_total', labelNames: ['cluster', 'endpoint', 'result'], registers,
    help: 'Active health-check probes of an endpoint by result: success, failure (an unexpected status), network_failure (refused, reset), timeout',
    collect() {
      this.reset();
      for (const e of endpoints()) {
        for (const result in e.checks) if (e.checks[result] > 0) this.inc({ cluster: e.cluster, endpoint: e.endpoint, result }, e.checks[result]);
      }
    },
  });
}
