/**
 * Everything that changes plugins while the gateway serves, as the composition root holds it: the
 * module sources (files, URLs, the registry, signatures), the plugin control (changes, canaries,
 * what reloads keep), what follows files and tags, and the admin API over them.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GatewayMetrics } from '../admin/metrics.js';
import type { GatewayConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { ModuleStore } from '../modules/module-store.js';
import type { Generation } from '../proxy/generation.js';
import { pluginApi, pluginCall, type AdminAnswer, type AdminCall, type AdminReads } from './admin-api.js';
import { ModuleFollow } from './module-follow.js';
import { ModuleSources } from './module-sources.js';
import { PluginControl } from './plugin-control.js';

export interface LivePluginsDeps {
  readonly store: ModuleStore;
  readonly logger: Logger;
  readonly metrics: GatewayMetrics;
  /** The configuration in force (its admin token, its modules section). */
  config(): GatewayConfig;
  /** The generation new streams go to. */
  current(): Generation;
  /** The edge functions' part of the admin API (absent: none). */
  readonly functions?: AdminReads['functions'];
}

export class LivePlugins {
  readonly control: PluginControl;
  private readonly sources: ModuleSources;
  private readonly follow: ModuleFollow;

  constructor(private readonly deps: LivePluginsDeps) {
    this.sources = new ModuleSources(deps.store, deps.config().modules);
    this.control = new PluginControl({ sources: this.sources, logger: deps.logger, metrics: deps.metrics, current: deps.current });
    this.follow = new ModuleFollow(this.control, this.sources, deps.logger);
  }

  /** The generation just put in force: its plugins' states kept, its files and tags followed. */
  adopt(generation: Generation): void {
    this.control.adopt(generation);
    this.follow.reconcile(generation);
  }

  /**
   * Runs a reload (`apply`: build the next generation and put it in force) with `config`'s modules
   * section (its trusted keys read again), one at a time with plugin changes: the reload starts
   * from the states they leave. The section in force comes back if the reload fails.
   */
  reload<T>(config: GatewayConfig, apply: () => Promise<T>): Promise<T> {
    return this.control.serially(async () => {
      const before = this.deps.config().modules;
      this.sources.configure(config.modules);
      try {
        return await apply();
      } catch (err) {
        this.sources.configure(before);
        // The failed build may have opened the new settings' registry (closing the one followed): follow again.
        this.follow.reconcile(this.deps.current());
        throw err;
      }
    });
  }

  /** A function's component, read and checked as a plugin's module is (module-sources.ts). */
  component(...args: Parameters<ModuleSources['component']>): ReturnType<ModuleSources['component']> {
    return this.sources.component(...args);
  }

  /** The bearer token of the plugin API: admin.token, else the variable admin.tokenEnv names. */
  private token(): string | null {
    const admin = this.deps.config().admin;
    return admin.token ?? process.env[admin.tokenEnv] ?? null;
  }

  /** The admin server's route for /plugins and /clusters. */
  routes(): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
    return pluginApi(this.control, { token: () => this.token(), reads: this.reads });
  }

  /** A call forwarded by a box's primary. */
  call(call: AdminCall): Promise<AdminAnswer> {
    return pluginCall(this.control, call, this.token(), this.reads);
  }

  /** GET /clusters reads the clusters of the generation new requests go to. */
  private get reads(): AdminReads {
    return { clusters: () => [...this.deps.current().clusters.values()].map((c) => c.report()), functions: this.deps.functions };
  }

  close(): void {
    this.control.close();
    this.follow.close();
    void this.sources.close();
  }
}
