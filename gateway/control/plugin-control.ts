/**
 * Live plugins: what the admin API, the CLI, watch mode and the module registry change while the
 * gateway serves. Every change applies to the generation new streams go to (the configuration in
 * force) and is built beside what runs (proxy/live-plugin.ts): a module or configuration that does
 * not compile, link, start or verify is refused with its GatewayError and nothing changes.
 *
 * Changes and reloads of the configuration file run one at a time (`serially`): a reload builds
 * its plugins from the states kept here, so a change landing halfway through it would be lost.
 *
 * What is kept across a reload is each plugin's LiveState, for as long as the file leaves the
 * plugin's entry as it was: a module swapped through the API, a disabled plugin and a canary in
 * progress all survive a SIGHUP of an unrelated part. A changed entry is the newest intent and
 * starts from the file again.
 */
import type { PluginConfig } from '../config/schema.js';
import { GatewayError } from '../errors.js';
import type { Logger } from '../log.js';
import type { GatewayMetrics } from '../admin/metrics.js';
import type { VersionFigures } from '../admin/plugin-metrics.js';
import { CanarySplit } from '../proxy/canary-split.js';
import type { Generation, PluginSources, SourcedModule } from '../proxy/generation.js';
import type { LivePlugin, LiveState, VersionSpec } from '../proxy/live-plugin.js';
import { VersionStats } from '../proxy/version-stats.js';
import { CanarySchedule } from './canary-schedule.js';
import type { ModuleSources } from './module-sources.js';
import { pluginReport, type PluginReport } from './plugin-report.js';
import type { CanaryRequest, ModuleChange } from './changes.js';

export type ChangeKind = 'swap' | 'configure' | 'enable' | 'disable' | 'canary' | 'promote' | 'rollback' | 'watch' | 'registry';

export interface ControlDeps {
  readonly sources: ModuleSources;
  readonly logger: Logger;
  readonly metrics: GatewayMetrics;
  /** The generation new streams go to. */
  current(): Generation;
}

export class PluginControl implements PluginSources {
  private readonly kept = new Map<string, { readonly entry: string; readonly state: LiveState }>();
  private queue: Promise<unknown> = Promise.resolve();
  readonly schedule: CanarySchedule;

  constructor(private readonly deps: ControlDeps) {
    this.schedule = new CanarySchedule({
      plugins: () => deps.current().plugins.values(),
      promote: (name, reason) => this.serially(() => this.apply(name, 'promote', (live) => this.endCanary(live, true, reason))),
      rollback: (name, reason) => this.serially(() => this.apply(name, 'rollback', (live) => this.endCanary(live, false, reason))),
      logger: deps.logger,
    });
  }

  // ---- PluginSources: what a generation is built from ----------------------------------------

  load(source: PluginConfig['module'], plugin: PluginConfig): Promise<SourcedModule> {
    return this.deps.sources.load(source, plugin);
  }

  state(plugin: PluginConfig, stable: SourcedModule, canary: SourcedModule | null): LiveState {
    const kept = this.kept.get(plugin.name);
    if (kept !== undefined && kept.entry === JSON.stringify(plugin)) return kept.state;
    return {
      enabled: true,
      stable: versionSpec(stable, plugin.configuration),
      canary: canary === null || plugin.canary === undefined ? null : {
        version: versionSpec(canary, plugin.canary.configuration ?? plugin.configuration),
        split: new CanarySplit(plugin.canary),
      },
    };
  }

  /** The generation now in force: keep its plugins' states (and forget the others) for the next reload. */
  adopt(generation: Generation): void {
    this.kept.clear();
    for (const live of generation.plugins.values()) {
      this.kept.set(live.name, { entry: JSON.stringify(live.config), state: live.state });
      if (live.state.canary !== null) this.schedule.begin(live.name, live.state.canary.split, false);
    }
    this.schedule.keepOnly(new Set([...generation.plugins.values()].filter((l) => l.state.canary !== null).map((l) => l.name)));
  }

  /** Runs `task` after every change and reload before it has ended. */
  serially<T>(task: () => Promise<T> | T): Promise<T> {
    const run = this.queue.then(task, task);
    this.queue = run.catch(() => undefined);
    return run;
  }

  // ---- reading ---------------------------------------------------------------------------------

  list(): PluginReport[] {
    return [...this.deps.current().plugins.values()].map((live) => pluginReport(live, this.schedule.progress(live.name)));
  }

  get(name: string): PluginReport {
    return pluginReport(this.live(name), this.schedule.progress(name));
  }

  /** Per-version counters for /metrics. */
  versions(): VersionFigures[] {
    const out: VersionFigures[] = [];
    for (const live of this.deps.current().plugins.values()) {
      out.push(figures(live.name, 'stable', live.state.stable));
      if (live.state.canary !== null) out.push(figures(live.name, 'canary', live.state.canary.version));
    }
    return out;
  }

  // ---- changes ---------------------------------------------------------------------------------

  /** Replaces the plugin's stable module (`kind`: who asked: the API, a watched file, the registry). */
  swap(name: string, change: ModuleChange, kind: ChangeKind = 'swap'): Promise<PluginReport> {
    return this.serially(async () => {
      const live = this.live(name);
      const module = await this.resolve(live, change).catch((err: unknown) => this.refused(name, kind, err));
      return this.apply(name, kind, (l) => {
        l.replaceStable(versionSpec(module, l.state.stable.configuration));
        return `module ${module.module.sha256} (${module.source}) serves new streams`;
      });
    });
  }

  /** Gives the plugin's stable version another configuration (a new root context, checked by on_configure). */
  configure(name: string, configuration: PluginConfig['configuration']): Promise<PluginReport> {
    return this.serially(() => this.apply(name, 'configure', (live) => {
      const stable = live.state.stable;
      live.replaceStable({ ...stable, configuration, stats: new VersionStats() });
      return 'new configuration serves new streams';
    }));
  }

  enable(name: string, enabled: boolean): Promise<PluginReport> {
    return this.serially(() => this.apply(name, enabled ? 'enable' : 'disable', (live) => {
      if (this.isService(live)) throw change(`plugin ${name} runs as a service: it has no streams to turn off`);
      live.state.enabled = enabled;
      return enabled ? 'new streams run the plugin' : 'new streams pass the plugin by';
    }));
  }

  /** Starts (or replaces) a canary version for a share of the plugin's streams. */
  canary(name: string, request: CanaryRequest): Promise<PluginReport> {
    return this.serially(async () => {
      const live = this.live(name);
      if (this.isService(live)) this.refused(name, 'canary', change(`plugin ${name} runs as a service, which has no streams to split`));
      const module = await this.resolve(live, request.module).catch((err: unknown) => this.refused(name, 'canary', err));
      return this.apply(name, 'canary', (l) => {
        const split = new CanarySplit(request.rule);
        l.startCanary({ version: versionSpec(module, request.configuration ?? l.state.stable.configuration), split });
        this.schedule.begin(name, split, true);
        return `canary ${module.module.sha256} (${module.source}) takes ${split.percent}% of new streams`;
      });
    });
  }

  /** Sets the canary's share by hand (0-100; 100 promotes). */
  setPercent(name: string, percent: number): Promise<PluginReport> {
    return this.serially(() => this.apply(name, 'canary', (live) => {
      const canary = live.state.canary;
      if (canary === null) throw change(`plugin ${name} has no canary`);
      if (percent >= 100) return this.endCanary(live, true, 'moved to 100%');
      canary.split.percent = percent;
      return `canary takes ${percent}% of new streams`;
    }));
  }

  promote(name: string): Promise<PluginReport> {
    return this.serially(() => this.apply(name, 'promote', (live) => this.endCanary(live, true, 'asked through the API')));
  }

  rollback(name: string): Promise<PluginReport> {
    return this.serially(() => this.apply(name, 'rollback', (live) => this.endCanary(live, false, 'asked through the API')));
  }

  close(): void {
    this.schedule.close();
  }

  // ---- the pieces ------------------------------------------------------------------------------

  private endCanary(live: LivePlugin, promote: boolean, reason: string): string {
    const canary = live.state.canary;
    if (canary === null) throw change(`plugin ${live.name} has no canary to ${promote ? 'promote' : 'roll back'}`);
    live.endCanary(promote);
    this.schedule.end(live.name);
    const sha = canary.version.module.sha256;
    return promote ? `canary ${sha} promoted (${reason}): it serves every new stream` : `canary ${sha} rolled back (${reason}): the stable version serves every new stream`;
  }

  /** Applies a synchronous change to the plugin of the current generation, logs and counts it. */
  private apply(name: string, kind: ChangeKind, act: (live: LivePlugin) => string): PluginReport {
    let what: string;
    try {
      what = act(this.live(name));
    } catch (err) {
      return this.refused(name, kind, err);
    }
    this.deps.metrics.pluginChanges.inc({ plugin: name, change: kind, result: 'applied' });
    this.deps.logger.info({ plugin: name, change: kind }, `plugin ${name}: ${kind}: ${what}`);
    return this.get(name);
  }

  private refused(name: string, kind: ChangeKind, err: unknown): never {
    this.deps.metrics.pluginChanges.inc({ plugin: name, change: kind, result: 'rejected' });
    const e = err as { code?: string; message?: string };
    this.deps.logger.error({ plugin: name, change: kind, code: e?.code, err: e?.message ?? String(err) },
      `plugin ${name}: ${kind} rejected, the running version keeps serving: ${e?.message ?? String(err)}`);
    throw err;
  }

  private live(name: string): LivePlugin {
    const live = this.deps.current().plugins.get(name);
    if (live === undefined) throw new GatewayError('GW_ERR_PLUGIN_UNKNOWN', `no plugin "${name}" runs in the configuration in force`);
    return live;
  }

  private isService(live: LivePlugin): boolean {
    return this.deps.current().config.services.includes(live.name);
  }

  private async resolve(live: LivePlugin, module: ModuleChange): Promise<SourcedModule> {
    const { sources } = this.deps;
    const signature = 'signature' in module ? module.signature ?? null : null;
    if ('bytes' in module) return sources.fromBytes(module.bytes, module.name ?? `admin upload to ${live.name}`, signature, live.config);
    if ('source' in module) {
      const found = await sources.load(module.source, live.config);
      // A signature sent with the request stands for a file or URL that has none beside it.
      return signature !== null && found.signedBy === null ? sources.fromBytes(found.module.bytes, found.source, signature, live.config) : found;
    }
    const cached = sources.fromStore(module.sha256, signature, live.config);
    if (cached !== null) return cached;
    if (sources.registry() !== null) return sources.load({ redis: module.sha256 }, live.config);
    throw change(`module ${module.sha256} is not in the module store (and no modules.registry is configured to fetch it from)`);
  }
}

function versionSpec(module: SourcedModule, configuration: PluginConfig['configuration']): VersionSpec {
  return { module: module.module, configuration, stats: new VersionStats(), source: module.source, signedBy: module.signedBy };
}

function figures(plugin: string, role: string, v: VersionSpec): VersionFigures {
  const s = v.stats;
  return {
    plugin, role, sha256: v.module.sha256, streams: s.streams, failed: s.failed, traps: s.traps,
    budgetOverruns: s.budgetOverruns, localReplies: s.localReplies, filterSeconds: s.filterSeconds,
  };
}

function change(message: string): GatewayError {
  return new GatewayError('GW_ERR_PLUGIN_CHANGE', message);
}
