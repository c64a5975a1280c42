/**
 * The gateway's Prometheus metrics (prom-client): traffic by route and status, latency, upstream
 * errors, time spent in each filter, VMs and their memory, the module cache, shared data, shared
 * queues and VM recycling (memory-metrics.ts), and the metrics filters define through proxy_define_metric
 * (guest-metrics.ts: `wasmcustom_` names, tags as labels).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { MetricType } from '../abi/enums.js';
import type { MetricCell, MetricsSink, PluginOrigin } from '../abi/ports.js';
import { GuestMetrics } from './guest-metrics.js';
import { edgeMetrics } from './edge-metrics.js';
import { memoryMetrics } from './memory-metrics.js';
import { pluginMetrics, type VersionFigures } from './plugin-metrics.js';
import { processMetrics, type ProcessFigures } from './process-metrics.js';
import { SeriesCounter, SeriesHistogram } from './series.js';

/** One vm_id's shared data: what it holds now, and what was evicted or refused so far. */
export interface SharedDataFigures {
  vmId: string;
  bytes: number;
  entries: number;
  evictions: number;
  refusals: Readonly<Record<string, number>>;
}

/** What the metrics read on each scrape. */
export interface MetricsSources {
  vms(): Array<{ plugin: string; memoryBytes: number; failed: boolean }>;
  moduleCache(): { hits: number; misses: number; compiles: number; entries: number; bytes: number };
  /** Shared data per vm_id (left out: no shared-data metrics). */
  sharedData?(): SharedDataFigures[];
  /** Shared queues per vm_id: bytes and items held, items dropped (left out: no queue metrics). */
  sharedQueues?(): Array<{ vmId: string; bytes: number; items: number; dropped: number }>;
  /** VM recycles so far, by the plugins of the VM (left out: none). */
  recycles?(): Array<{ plugins: string; recycles: number; failures: number }>;
  /** Connections each listener closed at accept (left out: none). */
  listeners?(): Array<{ listener: string; dropped: number }>;
  /** Each cluster's admission queue (left out: none). */
  clusters?(): Array<{ cluster: string; pending: number; overflows: number; timeouts: number }>;
  /**
   * Each endpoint's health (left out: none): in service or not, times ejected (null without
   * outlier detection) and active health-check probes by result.
   */
  endpoints?(): Array<{ cluster: string; endpoint: string; healthy: boolean; ejections: number | null; checks: Readonly<Record<string, number>> }>;
  /** The Redis backend's link (null or left out: the memory backend, no replication metrics). */
  replication?(): { connected: boolean; waiting: number; dropped: number } | null;
  /** The module versions plugins run (left out: no per-version metrics). */
  versions?(): VersionFigures[];
  /** Build, configuration and requests in flight (left out: none of those gauges). */
  process?: ProcessFigures;
}

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const FILTER_BUCKETS = [0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005, 0.01, 0.05];
const BY_PLUGINS = 'by the plugins each hosts (comma-separated when plugins share a VM)';

export class GatewayMetrics implements MetricsSink {
  readonly registry = new Registry();
  readonly requests: SeriesCounter;
  readonly latency: SeriesHistogram;
  readonly upstreamErrors: Counter<'cluster' | 'code'>;
  /** Time to the upstream's response headers, by cluster (or function:NAME). */
  readonly upstreamLatency: SeriesHistogram;
  /** Retries scheduled, by route and the retryOn condition that matched. */
  readonly upstreamRetries: Counter<'route' | 'reason'>;
  /** Retries refused by a cluster's retry budget. */
  readonly retryBudgetExhausted: Counter<'cluster'>;
  readonly filterSeconds: SeriesHistogram;
  readonly localReplies: Counter<'plugin' | 'status'>;
  readonly filterFailures: Counter<'plugin'>;
  /** Plugin changes (API, CLI, watch, registry) by plugin, kind and result. */
  readonly pluginChanges: Counter<'plugin' | 'change' | 'result'>;
  /** Configuration file reloads by result. */
  readonly reloads: Counter<'result'>;
  /** TLS handshakes that failed, by listener and reason (the error code). */
  readonly tlsHandshakeErrors: Counter<'listener' | 'reason'>;
  /** HTTP/2 streams the client reset, by listener and RST_STREAM code; connections closed for rapid reset. */
  readonly http2Resets: Counter<'listener' | 'code'>;
  readonly http2RapidResets: Counter<'listener'>;
  private readonly guest = new GuestMetrics(this.registry);
  /** The request series of each route, resolved once (requestDone). */
  private readonly routeSeries = new Map<string, { latency: { observe(value: number): void }; byStatus: Map<number, { inc(): void }> }>();
  /** The filter-time series of each plugin, resolved once (filterTimer). */
  private readonly filterTimers = new Map<string, { observe(value: number): void }>();

  constructor(sources: MetricsSources) {
    const registers = [this.registry];
    // Node's process metrics keep their standard names (process_*, nodejs_*), as dashboards expect.
    collectDefaultMetrics({ register: this.registry });
    // These three are gauges named like counters (promtool refuses them); nodejs_active_handles,
    // _requests and _resources carry the same counts by type.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) this.registry.removeSingleMetric(name);
    // The series every request updates are plain numbers (series.ts).
    this.requests = new SeriesCounter('edge_gateway_requests_total', 'Requests answered, by route ("" when no route matched) and status (0 when the client left before a response)', ['route', 'status'], this.registry);
    this.latency = new SeriesHistogram('edge_gateway_request_duration_seconds', 'Time from the start of a request to the end of its response, by route ("" when no route matched)', ['route'], LATENCY_BUCKETS, this.registry);
    this.upstreamErrors = new Counter({ name: 'edge_gateway_upstream_errors_total', help: 'Upstream requests that failed (refused, reset, timed out), by cluster and error code', labelNames: ['cluster', 'code'], registers });
    this.upstreamLatency = new SeriesHistogram('edge_gateway_upstream_response_seconds', 'Time from sending a request upstream (its first try) to the response headers it is answered with, by cluster, or function:NAME for an edge function', ['cluster'], LATENCY_BUCKETS, this.registry);
    this.upstreamRetries = new Counter({ name: 'edge_gateway_upstream_retries_total', help: 'Retries of upstream tries, by route and reason (the condition of the route\'s retryOn that matched)', labelNames: ['route', 'reason'], registers });
    this.retryBudgetExhausted = new Counter({ name: 'edge_gateway_upstream_retry_budget_exhausted_total', help: 'Retries refused because the cluster\'s retry budget was spent (the request got its last try\'s answer)', labelNames: ['cluster'], registers });
    this.filterSeconds = new SeriesHistogram('edge_gateway_filter_seconds', 'Time spent in one filter\'s callbacks during one request, by plugin', ['plugin'], FILTER_BUCKETS, this.registry);
    this.localReplies = new Counter({ name: 'edge_gateway_local_replies_total', help: 'Responses a filter sent itself (proxy_send_local_response), by plugin and status', labelNames: ['plugin', 'status'], registers });
    this.filterFailures = new Counter({ name: 'edge_gateway_filter_failures_total', help: 'Requests that failed because of a filter: its VM failed during the request, its failure policy answered 503 after an earlier failure, or it reset the stream', labelNames: ['plugin'], registers });
    new Gauge({
      name: 'edge_gateway_wasm_vms', help: `Wasm VMs alive, ${BY_PLUGINS} and state (running, failed)`, labelNames: ['plugin', 'state'], registers,
      collect() {
        this.reset();
        for (const vm of sources.vms()) this.inc({ plugin: vm.plugin, state: vm.failed ? 'failed' : 'running' });
      },
    });
    new Gauge({
      name: 'edge_gateway_wasm_memory_bytes', help: `Linear memory of the Wasm VMs, ${BY_PLUGINS}`, labelNames: ['plugin'], registers,
      collect() {
        this.reset();
        for (const vm of sources.vms()) this.inc({ plugin: vm.plugin }, vm.memoryBytes);
      },
    });
    // The store keeps the counts; counters (only growing) and gauges read them on each scrape.
    const counter = (name: string, key: 'hits' | 'misses' | 'compiles', help: string): void => {
      new Counter({ name, help, registers, collect() { this.reset(); this.inc(sources.moduleCache()[key]); } });
    };
    const gauge = (name: string, key: 'entries' | 'bytes', help: string): void => {
      new Gauge({ name, help, registers, collect() { this.set(sources.moduleCache()[key]); } });
    };
    counter('edge_gateway_module_cache_hits_total', 'hits', 'Module loads answered by the compiled-module cache');
    counter('edge_gateway_module_cache_misses_total', 'misses', 'Module loads that compiled, joined a compile in flight, or met a remembered invalid module');
    counter('edge_gateway_module_compiles_total', 'compiles', 'WebAssembly.compile calls');
    gauge('edge_gateway_module_cache_entries', 'entries', 'Compiled modules held by the compiled-module cache');
    gauge('edge_gateway_module_cache_bytes', 'bytes', 'Module bytes held by the compiled-module cache');
    if (sources.process !== undefined) processMetrics(sources.process, registers);
    memoryMetrics(sources, registers);
    edgeMetrics(sources, registers);
    const live = pluginMetrics({ versions: () => sources.versions?.() ?? [] }, registers);
    this.pluginChanges = live.changes;
    this.reloads = live.reloads;
    this.tlsHandshakeErrors = new Counter({
      name: 'edge_gateway_tls_handshake_errors_total', labelNames: ['listener', 'reason'], registers,
      help: 'TLS handshakes a listener refused or lost, by reason (no or a bad client certificate, an old version, a timeout)',
    });
    this.http2Resets = new Counter({
      name: 'edge_gateway_http2_stream_resets_total', labelNames: ['listener', 'code'], registers,
      help: 'HTTP/2 streams the client reset (RST_STREAM) before their response ended, by listener and error code',
    });
    this.http2RapidResets = new Counter({
      name: 'edge_gateway_http2_rapid_reset_closes_total', labelNames: ['listener'], registers,
      help: 'HTTP/2 connections closed because their client reset too many streams before their response began (rapid reset)',
    });
  }

  /**
   * Counts one answered request of `route` ("" when none matched) and its duration. The series
   * are resolved once per route and status: a labelled prom-client call validates and hashes its
   * labels every time, about a microsecond per request for these two.
   */
  requestDone(route: string, status: number, seconds: number): void {
    let series = this.routeSeries.get(route);
    if (series === undefined) this.routeSeries.set(route, (series = { latency: this.latency.labels(route), byStatus: new Map() }));
    let count = series.byStatus.get(status);
    if (count === undefined) series.byStatus.set(status, (count = this.requests.labels(route, String(status))));
    count.inc();
    series.latency.observe(seconds);
  }

  /** The per-plugin series of the filter-time histogram, resolved once (series.ts says why). */
  filterTimer(plugin: string): { observe(value: number): void } {
    let timer = this.filterTimers.get(plugin);
    if (timer === undefined) this.filterTimers.set(plugin, (timer = this.filterSeconds.labels(plugin)));
    return timer;
  }

  /**
   * Drops the filter-time series (and its cached handle) of every plugin not in `live`: a plugin
   * a reload removed, once the last generation that ran it has ended. Without this, each name a
   * configuration ever used stays in memory and on /metrics for the life of the process.
   */
  keepFilterTimers(live: ReadonlySet<string>): void {
    for (const plugin of this.filterTimers.keys()) {
      if (live.has(plugin)) continue;
      this.filterTimers.delete(plugin);
      this.filterSeconds.remove(plugin);
    }
  }

  /** MetricsSink for proxy_define_metric: see guest-metrics.ts for names, tags, units and the cap. */
  define(type: MetricType, name: string, origin: PluginOrigin): MetricCell | null {
    return this.guest.define(type, name, origin);
  }
}
