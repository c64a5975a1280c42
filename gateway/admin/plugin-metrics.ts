/**
 * The metrics of live plugins: changes through the API, the CLI, watch mode and the registry
 * (counted by plugin, kind and result), configuration reloads, the module each plugin runs (its
 * sha256 as a label), and the counters of each module version, stable or canary.
 */
import { Counter, Gauge, type Registry } from 'prom-client';

/** One running module version of a plugin, as /metrics reads it. */
export interface VersionFigures {
  readonly plugin: string;
  /** stable or canary. */
  readonly role: string;
  readonly sha256: string;
  readonly streams: number;
  readonly failed: number;
  readonly traps: number;
  readonly budgetOverruns: number;
  /** By status class, index 1 for 1xx … 5 for 5xx. */
  readonly localReplies: readonly number[];
  readonly filterSeconds: number;
}

export interface PluginMetricsSource {
  versions(): VersionFigures[];
}

const LABELS = ['plugin', 'role', 'sha256'] as const;

export function pluginMetrics(source: PluginMetricsSource, registers: Registry[]): { changes: Counter<'plugin' | 'change' | 'result'>; reloads: Counter<'result'> } {
  const perVersion = (name: string, help: string, value: (v: VersionFigures) => number, kind: 'counter' | 'gauge' = 'counter'): void => {
    const Metric = kind === 'counter' ? Counter : Gauge;
    new Metric({
      name, help, labelNames: LABELS, registers,
      collect() {
        this.reset();
        for (const v of source.versions()) this.inc({ plugin: v.plugin, role: v.role, sha256: v.sha256 }, value(v));
      },
    });
  };
  perVersion('edge_gateway_plugin_module_info', 'The module each plugin runs: 1 per plugin, role (stable, canary) and module sha256', () => 1, 'gauge');
  perVersion('edge_gateway_plugin_version_streams_total', 'Streams started on a module version of a plugin', (v) => v.streams);
  perVersion('edge_gateway_plugin_version_failed_streams_total', 'Streams a module version failed: refused by its failure policy, trapped or over budget, or answered 5xx by it', (v) => v.failed);
  perVersion('edge_gateway_plugin_version_traps_total', 'VM failures of a module version other than the CPU budget (traps, stack overflow, proc_exit)', (v) => v.traps);
  perVersion('edge_gateway_plugin_version_budget_overruns_total', 'Guest calls of a module version stopped by the CPU budget', (v) => v.budgetOverruns);
  perVersion('edge_gateway_plugin_version_filter_seconds_total', 'Time spent in a module version\'s callbacks', (v) => v.filterSeconds);
  new Counter({
    name: 'edge_gateway_plugin_version_local_replies_total', help: 'Local replies of a module version, by status class',
    labelNames: [...LABELS, 'class'], registers,
    collect() {
      this.reset();
      for (const v of source.versions()) {
        for (let c = 1; c <= 5; c++) if (v.localReplies[c] > 0) this.inc({ plugin: v.plugin, role: v.role, sha256: v.sha256, class: `${c}xx` }, v.localReplies[c]);
      }
    },
  });
  return {
    changes: new Counter({
      name: 'edge_gateway_plugin_changes_total', labelNames: ['plugin', 'change', 'result'], registers,
      help: 'Changes to a plugin (swap, configure, enable, disable, canary, promote, rollback, watch, registry), by result (applied, rejected)',
    }),
    reloads: new Counter({ name: 'edge_gateway_config_reloads_total', labelNames: ['result'], registers, help: 'Reloads of the configuration file (SIGHUP), by result (applied, rejected)' }),
  };
}
