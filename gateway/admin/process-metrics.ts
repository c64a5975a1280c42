/**
 * What the process is and does right now: `edge_gateway_build_info` (version, Node, arch), the
 * configuration in force (`edge_gateway_config_info` with its hash) and the requests in flight.
 * In a box of workers the primary sums every worker's series; the two info gauges say 'first'
 * instead, so a box of two reads 1 as one process does, not 2.
 */
import { Gauge, type Registry } from 'prom-client';

export interface ProcessFigures {
  readonly version: string;
  /** Requests being answered now, across every generation. */
  inflight(): number;
  /** The hash of the configuration in force (configuration.ts). */
  configHash(): string;
}

export function processMetrics(figures: ProcessFigures, registers: Registry[]): void {
  new Gauge({
    name: 'edge_gateway_build_info', labelNames: ['version', 'node', 'arch'], registers, aggregator: 'first',
    help: 'Always 1: the gateway\'s version, the Node.js version and the CPU architecture it runs on',
  }).set({ version: figures.version, node: process.versions.node, arch: process.arch }, 1);
  new Gauge({
    name: 'edge_gateway_config_info', labelNames: ['hash'], registers, aggregator: 'first',
    help: 'Always 1: the sha256 of the configuration in force (node identity left out, so nodes on one file agree); it changes with each applied reload',
    collect() {
      this.reset();
      this.set({ hash: figures.configHash() }, 1);
    },
  });
  new Gauge({
    name: 'edge_gateway_requests_in_flight', registers,
    help: 'Requests being answered now (their response not yet finished), across every configuration generation',
    collect() { this.set(figures.inflight()); },
  });
}
