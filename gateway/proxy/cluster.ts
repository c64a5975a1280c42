/**
 * An upstream cluster: one undici Pool per endpoint (keep-alive connections), endpoints picked
 * round-robin per request, preferring one with a free connection and passing over those out of
 * service (failing health checks or ejected: cluster-health.ts). The same clusters serve
 * forwarded requests and filters' callouts; forwarded requests are admitted through each
 * endpoint's bounded queue (upstream-queue.ts), which also reports their answers to outlier
 * detection. An `http2: true` cluster forwards over node:http2 instead (h2-upstream.ts: undici
 * cannot send request trailers); its Pool still serves the callouts.
 *
 * Not undici's BalancedPool: it dispatches straight to its pools, past the admission queue each
 * endpoint's Pool sits behind here, and its health is a weight lowered on errors, with neither
 * active checks, ejection times, maxEjectionPercent nor the free-connection preference.
 */
import { Pool } from 'undici';
import type { ClusterConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import { ClusterHealth, type EndpointReport } from './cluster-health.js';
import { H2Upstream } from './h2-upstream.js';
import type { EndpointHealth } from './endpoint-health.js';
import { RetryBudget } from './retry-policy.js';
import { ClusterAdmission, EndpointQueue } from './upstream-queue.js';

/** Concurrent streams on one HTTP/2 connection (undici's maxConcurrentStreams default; h2-upstream.ts's too). */
const H2_STREAMS_PER_CONNECTION = 100;

export interface Endpoint {
  readonly origin: string;
  readonly url: URL;
  readonly pool: Pool;
  /** Admission of forwarded requests: dispatch through it, not through the pool. */
  readonly queue: EndpointQueue;
  /** HTTP/2 clusters: where forwarded requests go (node:http2, h2-upstream.ts); the pool serves callouts. */
  readonly h2: H2Upstream | null;
  readonly health: EndpointHealth;
}

/** What /metrics shows of an endpoint (admin/edge-metrics.ts). */
export interface EndpointFigures {
  readonly cluster: string;
  readonly endpoint: string;
  readonly healthy: boolean;
  /** null: the cluster has no outlier detection. */
  readonly ejections: number | null;
  readonly checks: Readonly<Record<string, number>>;
}

export class Cluster {
  readonly name: string;
  readonly endpoints: readonly Endpoint[];
  readonly connectTimeoutMs: number;
  readonly timeoutMs: number;
  readonly admission: ClusterAdmission;
  readonly health: ClusterHealth;
  /** Retries in flight to this cluster, from every route (retry-loop.ts). */
  readonly retryBudget: RetryBudget;
  private next = 0;

  /** `logger` hears of a pool that fails to close: the stop goes on, the error is not lost. */
  constructor(readonly config: ClusterConfig, private readonly logger: Logger) {
    this.name = config.name;
    this.connectTimeoutMs = config.connectTimeoutMs;
    this.timeoutMs = config.timeoutMs;
    this.admission = new ClusterAdmission(config.maxPendingRequests, config.queueTimeoutMs);
    this.retryBudget = new RetryBudget(config.retryBudget);
    const capacity = config.maxConnections * (config.http2 ? H2_STREAMS_PER_CONNECTION : 1);
    this.health = new ClusterHealth(config, logger);
    const outlier = config.outlierDetection !== undefined;
    this.endpoints = config.endpoints.map((origin, i) => {
      const pool = new Pool(origin, {
        connections: config.maxConnections,
        connect: { timeout: config.connectTimeoutMs },
        headersTimeout: config.timeoutMs,
        bodyTimeout: config.timeoutMs,
        keepAliveTimeout: 30_000,
        allowH2: config.http2,
      });
      const health = this.health.endpoints[i];
      const url = new URL(origin);
      const h2 = config.http2 ? new H2Upstream(url, {
        connections: config.maxConnections, streamsPerConnection: H2_STREAMS_PER_CONNECTION, connectTimeoutMs: config.connectTimeoutMs, idleTimeoutMs: 30_000,
      }) : null;
      return { origin, url, pool, h2, queue: new EndpointQueue(h2 ?? pool, capacity, this.admission, outlier ? health : null), health };
    });
    this.health.start();
  }

  /**
   * The next endpoint in round-robin order, passing over those out of service, and those with no
   * free connection when another has one. With every endpoint out of service (panic mode) or none,
   * the plain round robin over all of them.
   */
  pick(): Endpoint {
    const n = this.endpoints.length;
    const down = this.health.down;
    if (down !== 0 && down !== n) return this.pickInService(n);
    let endpoint = this.endpoints[this.next];
    for (let tried = 1; tried < n && !endpoint.queue.free; tried++) {
      this.next = (this.next + 1) % n;
      endpoint = this.endpoints[this.next];
    }
    this.next = (this.next + 1) % n;
    return endpoint;
  }

  private pickInService(n: number): Endpoint {
    let fallback = -1;
    for (let tried = 0; tried < n; tried++) {
      const i = (this.next + tried) % n;
      const endpoint = this.endpoints[i];
      if (!endpoint.health.available) continue;
      if (endpoint.queue.free) {
        this.next = (i + 1) % n;
        return endpoint;
      }
      if (fallback < 0) fallback = i;
    }
    this.next = (fallback + 1) % n;
    return this.endpoints[fallback];
  }

  /** GET /clusters: the cluster, its mode and each endpoint's health. */
  report(): { name: string; panic: boolean; healthCheck: boolean; outlierDetection: boolean; endpoints: Array<EndpointReport & { active: number }> } {
    const health = this.health.report();
    return {
      name: this.name,
      panic: this.health.inPanic,
      healthCheck: this.config.healthCheck !== undefined,
      outlierDetection: this.config.outlierDetection !== undefined,
      endpoints: health.map((h, i) => ({ ...h, active: this.endpoints[i].queue.active })),
    };
  }

  /** /metrics: each endpoint's health, ejections and probes. */
  figures(): EndpointFigures[] {
    const outlier = this.config.outlierDetection !== undefined;
    return this.endpoints.map((e) => ({
      cluster: this.name, endpoint: e.origin, healthy: e.health.available, ejections: outlier ? e.health.ejections : null, checks: e.health.checks,
    }));
  }

  /** Stops the health checks, lets requests in flight finish, then closes every pool. Never rejects: a failure is logged. */
  async close(): Promise<void> {
    this.health.stop();
    await Promise.all(this.endpoints.map((e) => Promise.all([e.pool.close(), e.h2?.close()]).catch((err: unknown) => this.closeFailed(e, 'close', err))));
  }

  /** Stops the health checks and closes every pool at once, cutting what is in flight. A failure is logged. */
  destroy(): void {
    this.health.stop();
    for (const e of this.endpoints) {
      e.h2?.destroy();
      void e.pool.destroy().catch((err: unknown) => this.closeFailed(e, 'destroy', err));
    }
  }

  private closeFailed(endpoint: Endpoint, how: 'close' | 'destroy', err: unknown): void {
    const error = err as { code?: string; message?: string };
    this.logger.warn({ cluster: this.name, upstream: endpoint.origin, code: error?.code, err: error?.message ?? String(err) },
      `upstream pool ${how} failed`);
  }
}

export function createClusters(configs: readonly ClusterConfig[], logger: Logger): Map<string, Cluster> {
  return new Map(configs.map((c) => [c.name, new Cluster(c, logger)]));
}
