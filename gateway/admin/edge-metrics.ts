/**
 * The edge-protection metrics: connections a listener closed at accept (maxConnections) and each
 * cluster's admission queue (requests waiting for a pooled connection, overflows, queue
 * timeouts). The listeners and clusters keep the counts; these read them on each scrape, so
 * nothing is counted twice on the request path.
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
}
