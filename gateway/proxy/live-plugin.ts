/**
 * A plugin as routes see it, whose module can change under them: a stable module version, maybe
 * a canary version for a share of the streams (canary-split.ts), and an on/off switch.
 *
 * A version is one module with the plugin's configuration: one root context per configuration in
 * use (the plugin's own, and each distinct one a route gives: `filters: [{ plugin, configuration }]`),
 * all in one VM, since they share the VM key (vmId, module, VM configuration, limits).
 *
 * A change (swap, configuration, canary, promotion, rollback) builds the new version beside the
 * running one: compiled, linked, started and configured, or refused with the old one untouched.
 * Only then do new streams go to it; the old version retires, each runtime stopping with its last
 * stream (plugin-runtime.ts), so no stream ever changes version midway.
 *
 * What survives a reload of the configuration file that leaves the plugin's entry alone is the
 * LiveState: the versions' module and configuration, the canary's split and the counters. The
 * owner keeps it (control/plugin-control.ts) and hands it to the next generation's LivePlugin.
 */
import type { IncomingMessage } from 'node:http';
import type { PluginPorts } from '../abi/ports.js';
import type { VmPool } from '../abi/vm-pool.js';
import type { PluginConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { LoadedModule } from '../modules/module-store.js';
import type { CanarySplit } from './canary-split.js';
import { PluginRuntime } from './plugin-runtime.js';
import type { VersionStats } from './version-stats.js';

/** One module version of a plugin, as the owner describes it. */
export interface VersionSpec {
  readonly module: LoadedModule;
  /** The plugin's own configuration for this version (routes' configurations stay theirs). */
  readonly configuration: PluginConfig['configuration'];
  readonly stats: VersionStats;
  /** Where the module came from, for /plugins and the logs (a file, a URL, a registry tag, "admin upload"). */
  readonly source: string;
  /** The key that signed the module, or null. */
  readonly signedBy: string | null;
}

export interface CanaryState {
  readonly version: VersionSpec;
  readonly split: CanarySplit;
}

/** What a plugin is running, kept by the owner across reloads. */
export interface LiveState {
  enabled: boolean;
  stable: VersionSpec;
  canary: CanaryState | null;
}

export interface LiveDeps {
  readonly pool: VmPool;
  readonly logger: Logger;
  readonly ports: PluginPorts;
}

/** The runtimes of one version: index 0 runs the plugin's own configuration, the others a route's. */
class PluginVersion {
  readonly runtimes: PluginRuntime[];

  constructor(readonly spec: VersionSpec, config: PluginConfig, variants: readonly PluginConfig['configuration'][], deps: LiveDeps) {
    this.runtimes = [spec.configuration, ...variants].map((configuration) =>
      new PluginRuntime({ ...config, configuration }, spec.module, deps.pool, deps.logger, deps.ports, spec.stats));
  }

  /** Starts every root; on a failure stops those started and throws (a GatewayError naming the plugin). */
  start(): void {
    const started: PluginRuntime[] = [];
    try {
      for (const runtime of this.runtimes) {
        runtime.start();
        started.push(runtime);
      }
    } catch (err) {
      for (const runtime of started) runtime.stop();
      throw err;
    }
  }

  retire(): void {
    for (const runtime of this.runtimes) runtime.retire();
  }

  stop(): void {
    for (const runtime of this.runtimes) runtime.stop();
  }
}

export class LivePlugin {
  readonly name: string;
  private stableVersion: PluginVersion | null = null;
  private canaryVersion: PluginVersion | null = null;
  /** The canary's split, held here: the state is shared with the generation before, which must not follow this one's changes. */
  private split: CanarySplit | null = null;

  /** `variants`: the distinct route configurations, in the order routes refer to them (1, 2 …). */
  constructor(readonly config: PluginConfig, readonly state: LiveState, private readonly variants: readonly PluginConfig['configuration'][],
    private readonly deps: LiveDeps) {
    this.name = config.name;
  }

  /** Starts the stable version, and the canary if the state has one; throws as a start does. */
  start(): void {
    const stable = this.build(this.state.stable);
    const canary = this.state.canary === null ? null : this.build(this.state.canary.version);
    stable.start();
    try {
      canary?.start();
    } catch (err) {
      stable.stop();
      throw err;
    }
    this.stableVersion = stable;
    this.canaryVersion = canary;
    this.split = this.state.canary?.split ?? null;
  }

  /** The runtime a stream of a route's `variant` runs on, or null while the plugin is disabled. */
  runtime(variant: number, req: IncomingMessage): PluginRuntime | null {
    if (!this.state.enabled) return null;
    if (this.canaryVersion !== null && this.split!.takes(req)) return this.canaryVersion.runtimes[variant];
    return this.stableVersion!.runtimes[variant];
  }

  /** The runtime of the plugin's own configuration: a service's root, and what /plugins shows. */
  get stable(): PluginRuntime {
    return this.stableVersion!.runtimes[0];
  }

  get canary(): PluginRuntime | null {
    return this.canaryVersion?.runtimes[0] ?? null;
  }

  /** New streams run `spec` from now on; the old stable version ends with its streams. Throws (nothing changed) if `spec` cannot start. */
  replaceStable(spec: VersionSpec): void {
    const next = this.build(spec);
    next.start();
    const old = this.stableVersion;
    this.stableVersion = next;
    this.state.stable = spec;
    old?.retire();
  }

  /** Runs `canary` beside the stable version (replacing a canary already there). Throws (nothing changed) if it cannot start. */
  startCanary(canary: CanaryState): void {
    const next = this.build(canary.version);
    next.start();
    const old = this.canaryVersion;
    this.canaryVersion = next;
    this.split = canary.split;
    this.state.canary = canary;
    old?.retire();
  }

  /** The canary becomes the stable version (promote), or is dropped (rollback). Nothing is started: no failure. */
  endCanary(promote: boolean): void {
    const canary = this.canaryVersion;
    if (canary === null) return;
    const leaving = promote ? this.stableVersion : canary;
    if (promote) {
      this.stableVersion = canary;
      this.state.stable = canary.spec;
    }
    this.canaryVersion = null;
    this.split = null;
    this.state.canary = null;
    leaving?.retire();
  }

  /** Every runtime, stopped now (the generation ends: no stream is left). */
  stop(): void {
    this.stableVersion?.stop();
    this.canaryVersion?.stop();
  }

  private build(spec: VersionSpec): PluginVersion {
    return new PluginVersion(spec, this.config, this.variants, this.deps);
  }
}
