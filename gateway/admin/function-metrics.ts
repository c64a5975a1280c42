/**
 * Edge-function metrics: instantiation time per instance, the cold start a request saw (its wait
 * for a ready instance), requests by result, changes (swaps, canaries) by result, and warm
 * instances by state (read at each scrape).
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Cold-start buckets around the product's figures: the aim is under 1 ms, over 5 ms alarms. */
const START_BUCKETS = [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

export interface FunctionFigures {
  readonly name: string;
  readonly ready: number;
  readonly busy: number;
  readonly queued: number;
}

export class FunctionMetrics {
  readonly instantiate: Histogram<'function'>;
  readonly coldStart: Histogram<'function'>;
  readonly requests: Counter<'function' | 'result'>;
  /** Changes through the admin API and the CLI (swap, canary, promote, rollback) by result. */
  readonly changes: Counter<'function' | 'change' | 'result'>;

  constructor(registers: Registry[], figures: () => FunctionFigures[]) {
    this.instantiate = new Histogram({
      name: 'edge_gateway_function_instantiate_seconds', labelNames: ['function'], buckets: START_BUCKETS, registers,
      help: 'Time to make one instance of a function (off the request path, in its thread)',
    });
    this.coldStart = new Histogram({
      name: 'edge_gateway_function_cold_start_seconds', labelNames: ['function'], buckets: START_BUCKETS, registers,
      help: 'Time a request waited for a ready instance of its function (0 when one was warm); over 5 ms is logged as a warning',
    });
    this.requests = new Counter({
      name: 'edge_gateway_function_requests_total', labelNames: ['function', 'result'], registers,
      help: 'Requests a function answered (ok) or failed (timeout, failed, overloaded)',
    });
    this.changes = new Counter({
      name: 'edge_gateway_function_changes_total', labelNames: ['function', 'change', 'result'], registers,
      help: 'Changes of a function through the admin API (swap, canary, promote, rollback), by result (applied, rejected)',
    });
    new Gauge({
      name: 'edge_gateway_function_instances', labelNames: ['function', 'state'], registers,
      help: 'Instances of a function ready for a request or serving one, and requests queued for one (state="queued")',
      collect() {
        this.reset();
        for (const f of figures()) {
          this.set({ function: f.name, state: 'ready' }, f.ready);
          this.set({ function: f.name, state: 'busy' }, f.busy);
          this.set({ function: f.name, state: 'queued' }, f.queued);
        }
      },
    });
  }
}
