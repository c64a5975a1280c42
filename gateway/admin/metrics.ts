/**
 * The gateway's Prometheus metrics (prom-client): traffic by route and status, latency, upstream
 * errors, time spent in each filter, VMs and their memory, the module cache, and the metrics
 * filters define through proxy_define_metric (prefixed `wasmcustom_`, as Envoy namespaces them).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { MetricType } from '../abi/enums.js';
import type { MetricCell, MetricsSink, PluginOrigin } from '../abi/ports.js';

/** What the metrics read on each scrape. */
export interface MetricsSources {
  vms(): Array<{ plugin: string; memoryBytes: number; failed: boolean }>;
  moduleCache(): { hits: number; misses: number; compiles: number; entries: number; bytes: number };
}

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const FILTER_BUCKETS = [0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005, 0.01, 0.05];

function metricName(name: string): string {
  return `wasmcustom_${name.replace(/[^A-Za-z0-9_:]/g, '_')}`;
}

export class GatewayMetrics implements MetricsSink {
  readonly registry = new Registry();
  readonly requests: Counter<'route' | 'status'>;
  readonly latency: Histogram<'route'>;
  readonly upstreamErrors: Counter<'cluster' | 'code'>;
  readonly filterSeconds: Histogram<'plugin'>;
  readonly localReplies: Counter<'plugin' | 'status'>;
  readonly filterFailures: Counter<'plugin'>;
  private readonly custom = new Map<string, { type: MetricType; cell: MetricCell }>();

  constructor(sources: MetricsSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'edge_gateway_process_' });
    this.requests = new Counter({ name: 'edge_gateway_requests_total', help: 'Requests answered, by route and status', labelNames: ['route', 'status'], registers });
    this.latency = new Histogram({ name: 'edge_gateway_request_duration_seconds', help: 'Time from request start to the end of the response', labelNames: ['route'], buckets: LATENCY_BUCKETS, registers });
    this.upstreamErrors = new Counter({ name: 'edge_gateway_upstream_errors_total', help: 'Upstream failures (refused, reset, timeout) by cluster and error code', labelNames: ['cluster', 'code'], registers });
    this.filterSeconds = new Histogram({ name: 'edge_gateway_filter_seconds', help: 'Time spent in one filter\'s callbacks for one request', labelNames: ['plugin'], buckets: FILTER_BUCKETS, registers });
    this.localReplies = new Counter({ name: 'edge_gateway_local_replies_total', help: 'Responses a filter sent itself (proxy_send_local_response)', labelNames: ['plugin', 'status'], registers });
    this.filterFailures = new Counter({ name: 'edge_gateway_filter_failures_total', help: 'Requests on which a filter failed (trap, proc_exit)', labelNames: ['plugin'], registers });
    new Gauge({
      name: 'edge_gateway_wasm_vms', help: 'Wasm VMs alive, by plugin and state', labelNames: ['plugin', 'state'], registers,
      collect() {
        this.reset();
        for (const vm of sources.vms()) this.inc({ plugin: vm.plugin, state: vm.failed ? 'failed' : 'running' });
      },
    });
    new Gauge({
      name: 'edge_gateway_wasm_memory_bytes', help: 'Linear memory of the Wasm VMs, by plugin', labelNames: ['plugin'], registers,
      collect() {
        this.reset();
        for (const vm of sources.vms()) this.inc({ plugin: vm.plugin }, vm.memoryBytes);
      },
    });
    const cache = (key: 'hits' | 'misses' | 'compiles' | 'entries' | 'bytes', help: string): void => {
      new Gauge({ name: `edge_gateway_module_cache_${key}`, help, registers, collect() { this.set(sources.moduleCache()[key]); } });
    };
    cache('hits', 'Module loads answered from the compiled-module cache');
    cache('misses', 'Module loads not in the compiled-module cache');
    cache('compiles', 'WebAssembly.compile calls');
    cache('entries', 'Compiled modules cached');
    cache('bytes', 'Module bytes in the compiled-module cache');
  }

  /** MetricsSink for proxy_define_metric: the same name twice is the same metric. */
  define(type: MetricType, name: string, _origin: PluginOrigin): MetricCell {
    const existing = this.custom.get(name);
    if (existing !== undefined && existing.type === type) return existing.cell;
    const full = metricName(name);
    const help = `Defined by a filter as "${name}"`;
    let cell: MetricCell;
    if (type === MetricType.COUNTER) {
      const c = new Counter({ name: full, help, registers: [this.registry] });
      let value = 0;
      cell = { add: (d) => { value += d; c.inc(d); }, set: () => undefined, observe: () => undefined, value: () => value };
    } else if (type === MetricType.GAUGE) {
      const g = new Gauge({ name: full, help, registers: [this.registry] });
      let value = 0;
      cell = { add: (d) => { value += d; g.set(value); }, set: (v) => { value = v; g.set(v); }, observe: () => undefined, value: () => value };
    } else {
      const h = new Histogram({ name: full, help, registers: [this.registry], buckets: [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000] });
      cell = { add: () => undefined, set: () => undefined, observe: (v) => h.observe(v), value: () => 0 };
    }
    this.custom.set(name, { type, cell });
    return cell;
  }
}
