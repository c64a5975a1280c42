/**
 * The metrics one VM's guests have defined: ids as cpp-host encodes them (the type in the low two
 * bits: counters 4, 8, …; gauges 5, 9, …; histograms 6, 10, …), one id per (type, name), so a
 * guest that defines its metric on every request (some SDK examples do) gets the same id and
 * the table stays its size. At most MAX_GUEST_METRICS entries.
 */
import type { MetricType } from './enums.js';
import { MAX_GUEST_METRICS } from './limits.js';
import type { MetricCell, MetricsSink, PluginOrigin } from './ports.js';

export class MetricTable {
  private readonly ids = new Map<string, number>();
  private readonly cells = new Map<number, MetricCell>();
  private readonly nextId = [4, 5, 6];

  /**
   * The id of (type, name), defined in `sink` on behalf of `origin` the first time. Null when
   * the table is full or the sink refused (its per-plugin cap): nothing is stored, no id is taken.
   */
  define(type: MetricType, name: string, sink: MetricsSink, origin: PluginOrigin): number | null {
    const key = `${type}\0${name}`;
    const known = this.ids.get(key);
    if (known !== undefined) return known;
    if (this.ids.size >= MAX_GUEST_METRICS) return null;
    const cell = sink.define(type, name, origin);
    if (cell === null) return null;
    const id = this.nextId[type];
    this.nextId[type] = id + 4;
    this.ids.set(key, id);
    this.cells.set(id, cell);
    return id;
  }

  cell(id: number): MetricCell | undefined {
    return this.cells.get(id);
  }

  get size(): number {
    return this.ids.size;
  }
}
