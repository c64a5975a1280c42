/** What /plugins tells about one plugin: each version's module, health and counters, and the canary's split. */
import type { LivePlugin, VersionSpec } from '../proxy/live-plugin.js';
import type { PluginRuntime } from '../proxy/plugin-runtime.js';
import type { CanaryProgress } from './canary-schedule.js';

export type PluginReport = Record<string, unknown>;

function version(spec: VersionSpec, runtime: PluginRuntime | null): Record<string, unknown> {
  const vm = runtime?.root?.vm ?? null;
  return {
    sha256: spec.module.sha256, module: spec.module.name, source: spec.source, signedBy: spec.signedBy,
    healthy: runtime?.healthy ?? false, failure: runtime?.failure?.message ?? null,
    reloads: runtime?.reloads ?? 0, recycles: runtime?.recycles ?? 0,
    vm: vm === null ? null : { name: vm.name, memoryBytes: vm.mem.size, failed: vm.failed },
    counters: spec.stats.report(),
  };
}

export function pluginReport(live: LivePlugin, progress: CanaryProgress | null): PluginReport {
  const stable = live.stable;
  const canary = live.state.canary;
  return {
    name: live.name, rootId: live.config.rootId, vmId: live.config.vmId, failurePolicy: live.config.failurePolicy,
    enabled: live.state.enabled,
    // The stable version's, flat, as /plugins always showed them.
    module: live.state.stable.module.name, sha256: live.state.stable.module.sha256,
    healthy: stable.healthy, reloads: stable.reloads, recycles: stable.recycles, failure: stable.failure?.message ?? null,
    stable: version(live.state.stable, stable),
    canary: canary === null ? null : {
      ...version(canary.version, live.canary),
      percent: canary.split.percent, match: canary.split.rule.match ?? null, sticky: canary.split.rule.sticky ?? null,
      steps: canary.split.rule.steps ?? null, holdMs: canary.split.rule.holdMs, rollback: canary.split.rule.rollback,
      ...(progress ?? {}),
    },
  };
}
