/**
 * An upstream cluster: one undici Pool per endpoint (keep-alive connections), endpoints picked
 * round-robin per request, preferring one with a free connection. The same clusters serve
 * forwarded requests and filters' callouts; forwarded requests are admitted through each
 * endpoint's bounded queue (upstream-queue.ts).
 */
import { Pool } from 'undici';
import type { ClusterConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import { ClusterAdmission, EndpointQueue } from './upstream-queue.js';

/** Concurrent streams undici opens on one HTTP/2 connection (its maxConcurrentStreams default). */
const H2_STREAMS_PER_CONNECTION = 100;

export interface Endpoint {
  readonly origin: string;
  readonly url: URL;
  readonly pool: Pool;
  /** Admission of forwarded requests: dispatch through it, not through the pool. */
  readonly queue: EndpointQueue;
}

export class Cluster {
  readonly name: string;
  readonly endpoints: readonly Endpoint[];
  readonly connectTimeoutMs: number;
  readonly timeoutMs: number;
  readonly admission: ClusterAdmission;
  private next = 0;

  /** `logger` hears of a pool that fails to close: the stop goes on, the error is not lost. */
  constructor(readonly config: ClusterConfig, private readonly logger: Logger) {
    this.name = config.name;
    this.connectTimeoutMs = config.connectTimeoutMs;
    this.timeoutMs = config.timeoutMs;
    this.admission = new ClusterAdmission(config.maxPendingRequests, config.queueTimeoutMs);
    const capacity = config.maxConnections * (config.http2 ? H2_STREAMS_PER_CONNECTION : 1);
    this.endpoints = config.endpoints.map((origin) => {
      const pool = new Pool(origin, {
        connections: config.maxConnections,
        connect: { timeout: config.connectTimeoutMs },
        headersTimeout: config.timeoutMs,
        bodyTimeout: config.timeoutMs,
        keepAliveTimeout: 30_000,
        allowH2: config.http2,
      });
      return { origin, url: new URL(origin), pool, queue: new EndpointQueue(pool, capacity, this.admission) };
    });
  }

  /** The next endpoint in round-robin order, passing over those with no free connection when another has one. */
  pick(): Endpoint {
    const n = this.endpoints.length;
    let endpoint = this.endpoints[this.next];
    for (let tried = 1; tried < n && !endpoint.queue.free; tried++) {
      this.next = (this.next + 1) % n;
      endpoint = this.endpoints[this.next];
    }
    this.next = (this.next + 1) % n;
    return endpoint;
  }

  /** Lets requests in flight finish, then closes every pool. Never rejects: a failure is logged. */
  async close(): Promise<void> {
    await Promise.all(this.endpoints.map((e) => e.pool.close().catch((err: unknown) => this.closeFailed(e, 'close', err))));
  }

  /** Closes every pool at once, cutting what is in flight. A failure is logged. */
  destroy(): void {
    for (const e of this.endpoints) void e.pool.destroy().catch((err: unknown) => this.closeFailed(e, 'destroy', err));
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
