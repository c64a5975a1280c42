/**
 * An upstream cluster: one undici Pool per endpoint (keep-alive connections), endpoints picked
 * round-robin per request. The same clusters serve forwarded requests and filters' callouts.
 */
import { Pool } from 'undici';
import type { ClusterConfig } from '../config/schema.js';

export interface Endpoint {
  readonly origin: string;
  readonly url: URL;
  readonly pool: Pool;
}

export class Cluster {
  readonly name: string;
  readonly endpoints: readonly Endpoint[];
  readonly connectTimeoutMs: number;
  readonly timeoutMs: number;
  private next = 0;

  constructor(readonly config: ClusterConfig) {
    this.name = config.name;
    this.connectTimeoutMs = config.connectTimeoutMs;
    this.timeoutMs = config.timeoutMs;
    this.endpoints = config.endpoints.map((origin) => ({
      origin,
      url: new URL(origin),
      pool: new Pool(origin, {
        connections: config.maxConnections,
        connect: { timeout: config.connectTimeoutMs },
        headersTimeout: config.timeoutMs,
        bodyTimeout: config.timeoutMs,
        keepAliveTimeout: 30_000,
        allowH2: config.http2,
      }),
    }));
  }

  /** The next endpoint in round-robin order. */
  pick(): Endpoint {
    const endpoint = this.endpoints[this.next];
    this.next = (this.next + 1) % this.endpoints.length;
    return endpoint;
  }

  async close(): Promise<void> {
    await Promise.all(this.endpoints.map((e) => e.pool.close().catch(() => undefined)));
  }

  destroy(): void {
    for (const e of this.endpoints) void e.pool.destroy().catch(() => undefined);
  }
}

export function createClusters(configs: readonly ClusterConfig[]): Map<string, Cluster> {
  return new Map(configs.map((c) => [c.name, new Cluster(c)]));
}
