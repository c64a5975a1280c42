/**
 * The metrics filters define (proxy_define_metric), as Prometheus families on the gateway's registry.
 *
 * - **Names**: `wasmcustom_` and the name, every character other than letters, digits, `_` and
 *   `:` turned into `_` (Envoy namespaces them `wasmcustom.`).
 * - **Tags**: a segment `TAG=.=VALUE;.;` anywhere in the name becomes the label TAG="VALUE" and
 *   leaves the name. These are the separators Istio's filters write (the C++ SDK's `Metric` with
 *   field separator `;.;` and value separator `=.=`) and that Istio's `stats_tags` regexes extract
 *   in Envoy, so `route=.=api;.;response_code_class=.=2xx;.;observe.requests` is
 *   `wasmcustom_observe_requests_total{route="api",response_code_class="2xx"}` here, and one
 *   family with those tags in Envoy too. A name without tags is one series, as before.
 * - **Units**, as Prometheus names them: a counter gets `_total` unless its name ends so; a
 *   histogram whose name ends in `_ms` (Envoy's unit for durations) is exported in seconds,
 *   `…_seconds`, its samples and Envoy's default buckets divided by 1000.
 *
 * The same name twice is the same metric, whichever plugin or generation defines it (Envoy's
 * stats store does the same); so are names that export alike (`a.b`, `a_b`, or tags in another
 * order). A plugin adds at most MAX_GUEST_METRICS series over the life of the process: a series
 * is never dropped, and every reload or recycle starts VMs with empty tables.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { MetricType } from '../abi/enums.js';
import { MAX_GUEST_METRICS } from '../abi/limits.js';
import type { MetricCell, PluginOrigin } from '../abi/ports.js';
import { GatewayError } from '../errors.js';

/** Envoy's default histogram buckets: what a filter's histogram gets there too (values are unitless). */
const ENVOY_BUCKETS = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000];
// `s`: a value is any bytes up to the first `;.;`, line breaks included.
const TAG = /([A-Za-z][A-Za-z0-9_]*)=\.=(.*?);\.;/gs;
/** Labels Prometheus gives a meaning of its own (histogram buckets, summary quantiles). */
const RESERVED = new Set(['le', 'quantile']);

/** How one defined name is exported: family name, labels (sorted by name) and the factor samples get. */
export interface ExportedName {
  readonly family: string;
  readonly labels: ReadonlyArray<readonly [string, string]>;
  readonly scale: number;
}

/** The Prometheus form of a guest's metric name (see the header); throws GW_ERR_METRIC_NAME. */
export function exportedName(type: MetricType, name: string): ExportedName {
  const labels: Array<[string, string]> = [];
  const bare = name.replace(TAG, (_all, tag: string, value: string) => {
    if (RESERVED.has(tag)) throw new GatewayError('GW_ERR_METRIC_NAME', `metric "${name}": the tag "${tag}" is reserved by Prometheus`);
    if (labels.some(([t]) => t === tag)) throw new GatewayError('GW_ERR_METRIC_NAME', `metric "${name}": the tag "${tag}" is given twice`);
    labels.push([tag, value]);
    return '';
  });
  let family = `wasmcustom_${bare.replace(/[^A-Za-z0-9_:]/g, '_').replace(/^_+|_+$/g, '')}`;
  if (family === 'wasmcustom_') throw new GatewayError('GW_ERR_METRIC_NAME', `metric "${name}" has tags but no name`);
  let scale = 1;
  if (type === MetricType.COUNTER && !family.endsWith('_total')) family += '_total';
  if (type === MetricType.HISTOGRAM && family.endsWith('_ms')) {
    family = `${family.slice(0, -3)}_seconds`;
    scale = 1e-3;
  }
  labels.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return { family, labels, scale };
}

interface Family {
  readonly type: MetricType;
  readonly tags: string;
  readonly metric: Counter<string> | Gauge<string> | Histogram<string>;
}

export class GuestMetrics {
  private readonly families = new Map<string, Family>();
  /** One cell per series: family name and label values. */
  private readonly cells = new Map<string, MetricCell>();
  /** Series each plugin added (by plugin name), for the cap. */
  private readonly addedBy = new Map<string, number>();

  constructor(private readonly registry: Registry) {}

  /**
   * MetricsSink.define: the cell of `name`'s series, or null past the plugin's cap. Throws
   * GW_ERR_METRIC_TYPE for a family defined with another type, GW_ERR_METRIC_NAME for a name it
   * cannot export or a family defined with other tags (the hostcall answers INTERNAL_FAILURE).
   */
  define(type: MetricType, name: string, origin: PluginOrigin): MetricCell | null {
    const { family: familyName, labels, scale } = exportedName(type, name);
    const key = `${familyName}{${labels.map(([t, v]) => `${t}=${JSON.stringify(v)}`).join(',')}}`;
    const family = this.families.get(familyName);
    if (family !== undefined && family.type !== type) throw new GatewayError('GW_ERR_METRIC_TYPE', `metric ${familyName} is already defined with another type`);
    const tags = labels.map(([t]) => t).join(',');
    if (family !== undefined && family.tags !== tags) {
      throw new GatewayError('GW_ERR_METRIC_NAME', `metric ${familyName} is already defined with the tags (${family.tags}), not (${tags})`);
    }
    const existing = this.cells.get(key);
    if (existing !== undefined) return existing;
    const added = this.addedBy.get(origin.pluginName) ?? 0;
    if (added >= MAX_GUEST_METRICS) return null;
    this.addedBy.set(origin.pluginName, added + 1);
    const { metric } = family ?? this.addFamily(familyName, type, labels.map(([t]) => t), name, scale);
    const values = Object.fromEntries(labels);
    const cell = cellOf(type, metric, labels.length === 0 ? null : values, scale);
    this.cells.set(key, cell);
    return cell;
  }

  private addFamily(name: string, type: MetricType, labelNames: string[], defined: string, scale: number): Family {
    const registers = [this.registry];
    // JSON's quoting: control characters in a guest's name cannot reach the exposition raw.
    const help = `Metric ${JSON.stringify(defined.replace(TAG, ''))} defined by a Wasm filter (proxy_define_metric)${scale === 1 ? '' : ', recorded in ms and exported in seconds'}`;
    const metric = type === MetricType.COUNTER ? new Counter({ name, help, labelNames, registers })
      : type === MetricType.GAUGE ? new Gauge({ name, help, labelNames, registers })
        : new Histogram({ name, help, labelNames, registers, buckets: ENVOY_BUCKETS.map((b) => b * scale) });
    const family = { type, tags: labelNames.join(','), metric };
    this.families.set(name, family);
    return family;
  }
}

/**
 * The cell of one series; `value` is what proxy_get_metric reads (histograms: 0, as in Envoy).
 * A tagged series is written at 0 from its definition on, as Envoy shows a stat it never moved
 * (prom-client writes a labelled series only once it changes).
 */
function cellOf(type: MetricType, metric: Family['metric'], labels: Record<string, string> | null, scale: number): MetricCell {
  let value = 0;
  if (type === MetricType.COUNTER) {
    const c = labels === null ? metric as Counter : (metric as Counter<string>).labels(labels);
    if (labels !== null) c.inc(0);
    return { add: (d) => { value += d; c.inc(d); }, set: () => undefined, observe: () => undefined, value: () => value };
  }
  if (type === MetricType.GAUGE) {
    const g = labels === null ? metric as Gauge : (metric as Gauge<string>).labels(labels);
    if (labels !== null) g.set(0);
    return { add: (d) => { value += d; g.set(value); }, set: (v) => { value = v; g.set(v); }, observe: () => undefined, value: () => value };
  }
  if (labels !== null) (metric as Histogram<string>).zero(labels);
  const h = labels === null ? metric as Histogram : (metric as Histogram<string>).labels(labels);
  return { add: () => undefined, set: () => undefined, observe: (v) => h.observe(v * scale), value: () => 0 };
}
