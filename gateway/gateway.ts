/**
 * The composition root: builds every layer from one frozen configuration and wires the ports.
 * It owns the listeners, the admin listener, the current generation, reload and graceful drain.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { createAdminServer } from './admin/server.js';
import { GatewayMetrics } from './admin/metrics.js';
import { EdgeFunctions } from './edge-functions.js';
import { filterPlugin, type GatewayConfig } from './config/schema.js';
import { GatewayError } from './errors.js';
import { abiLogger, createLogger, type Logger } from './log.js';
import { createModuleStore, type ModuleStore } from './modules/module-store.js';
import { LivePlugins } from './control/live-plugins.js';
import { VmPool } from './abi/vm-pool.js';
import { gatewayForeignFunctions } from './proxy/foreign.js';
import { Generation } from './proxy/generation.js';
import { createListener } from './proxy/listener.js';
import { ListenersTls } from './proxy/tls.js';
import { closeServer, listen } from './server-binding.js';
import { createSharedState, type SharedState } from './shared-state/create.js';
import type { IpcLink } from './shared-state/ipc-link.js';
import { TrafficObserver } from './traffic-observer.js';
import { VERSION } from './version.js';
import { configHash } from './config/hash.js';
import type { DestinationStream } from 'pino';

export interface GatewayOptions {
  /** Where JSON log lines go (default stdout). */
  readonly logDestination?: DestinationStream;
  readonly logger?: Logger;
  /**
   * A worker of a box (workers/worker.ts): no admin listener of its own (the primary has the
   * box's), and shared data replicated through the primary when the backend is memory.
   */
  readonly worker?: { readonly box?: IpcLink };
}

/** What `Gateway.validate` built and started, for its one-line summary. */
export interface ValidationSummary {
  /** Plugins started (filters used by a route, and services). */
  readonly plugins: number;
  readonly services: number;
  /** Plugins no route and no service uses: like `start`, validation does not load them. */
  readonly unused: number;
  readonly routes: number;
  readonly clusters: number;
  readonly functions: number;
}

export interface BoundAddresses {
  readonly listeners: ReadonlyMap<string, AddressInfo>;
  /** null for a worker of a box: the primary binds the admin listener. */
  readonly admin: AddressInfo | null;
}

export class Gateway {
  readonly logger: Logger;
  readonly metrics: GatewayMetrics;
  readonly store: ModuleStore;
  readonly pool: VmPool;
  /** Shared data and queues, chosen by `sharedState` once for the life of the gateway. */
  readonly sharedState: SharedState;
  private sharedStateClosed: Promise<void> | null = null;
  /** Live plugin changes (admin API, CLI, watch mode, registry) and what reloads keep of them. */
  readonly live: LivePlugins;
  private readonly traffic: TrafficObserver;
  /** Edge functions: their warm pools outlive reloads that leave them unchanged. */
  readonly functions: EdgeFunctions;
  private generation!: Generation;
  /** Every generation not yet disposed: each one removes itself when disposed (hooks.disposed). */
  private readonly generations = new Set<Generation>();
  private readonly servers = new Map<string, Server>();
  /** The listeners' certificates: read at create, read again and installed at each reload. */
  private readonly tls: ListenersTls;
  /** Upgraded (WebSocket) connections: the HTTP server neither tracks nor closes them. */
  private readonly tunnels = new Set<Duplex>();
  private admin: Server | null = null;
  private started = false;
  private isDraining = false;
  private stopping: Promise<void> | null = null;
  /** A worker of a box: the primary has the admin listener. */
  private readonly worker: boolean;
  private readonly sharedStateConfig: GatewayConfig['sharedState'];

  private constructor(private config: GatewayConfig, options: GatewayOptions) {
    this.logger = options.logger ?? createLogger(config.log.level, options.logDestination);
    // Fixed for the life of the gateway, like the listener addresses.
    this.worker = options.worker !== undefined;
    this.sharedStateConfig = config.sharedState;
    this.sharedState = createSharedState(config.sharedState, config.node.id, {
      warn: (message) => this.logger.warn({ backend: config.sharedState.backend }, message),
      connection: (connected, reason) => {
        if (connected) this.logger.info({ backend: 'redis' }, 'shared state: connected to Redis');
        else this.logger.warn({ backend: 'redis', reason }, 'shared state: Redis unreachable; serving this node\'s copy, writes wait for it');
      },
    }, options.worker?.box);
    this.tls = new ListenersTls(config.listeners);
    this.store = createModuleStore();
    this.metrics = new GatewayMetrics({
      // A VM shared by plugins (or by two generations of one plugin during a reload) is named once
      // after all of them, sorted, so the label is stable.
      vms: () => this.pool.vms().map((vm) => ({
        plugin: [...new Set([...vm.roots()].map((r) => r.pluginName))].sort().join(',') || vm.name,
        memoryBytes: vm.mem.size, failed: vm.failed,
      })),
      moduleCache: () => this.store.stats(),
      sharedData: () => this.sharedState.stats(),
      sharedQueues: () => this.sharedState.queueStats(),
      replication: () => this.sharedState.replication(),
      versions: () => this.live.control.versions(),
      recycles: () => this.pool.recycles(),
      listeners: () => this.config.listeners.map((l) => ({ listener: l.name, dropped: this.traffic.connectionsDropped(l.name) })),
      // The clusters of the configuration in force (a reload starts their counts again).
      clusters: () => [...this.generation.clusters.values()].map((c) => ({
        cluster: c.name, pending: c.admission.pending, overflows: c.admission.overflows, timeouts: c.admission.timeouts,
      })),
      // Health starts again with a reload too (new clusters, endpoints in service).
      endpoints: () => [...this.generation.clusters.values()].flatMap((c) => c.figures()),
      process: { version: VERSION, inflight: () => this.inflight(), configHash: () => configHash(this.config) },
    });
    this.traffic = new TrafficObserver(this.metrics, this.logger);
    this.functions = new EdgeFunctions(this.logger, [this.metrics.registry], { cacheDir: config.modules.cacheDir, store: this.store, callouts: () => this.generation.clusterCallouts, read: (source, required) => this.live.component(source, required) });
    this.live = new LivePlugins({ store: this.store, logger: this.logger, metrics: this.metrics, config: () => this.config, current: () => this.generation, functions: this.functions.api() });
    this.pool = new VmPool({
      logger: abiLogger(this.logger),
      sharedData: this.sharedState.data,
      sharedQueues: this.sharedState.queues,
      metrics: this.metrics,
      // No callouts or properties here: each plugin brings its generation's (PluginSpec.ports).
      foreignFunctions: gatewayForeignFunctions(),
    });
  }

  /** Builds the gateway for `config`: modules compiled, plugins and services started. */
  static async create(config: GatewayConfig, options: GatewayOptions = {}): Promise<Gateway> {
    const gateway = new Gateway(config, options);
    try {
      gateway.generation = await gateway.build(config);
    } catch (err) {
      gateway.live.close();
      throw err;
    }
    gateway.live.adopt(gateway.generation);
    return gateway;
  }

  /**
   * Everything `start` does except binding: reads, pins and compiles every module, starts every
   * plugin's VM and root context (on_vm_start, on_configure) and every service, then disposes it
   * all (each root gets on_done). Rejects with what `create` rejects with: a PluginsError listing
   * every plugin that failed, each with its code.
   */
  static async validate(config: GatewayConfig, options: GatewayOptions = {}): Promise<ValidationSummary> {
    const gateway = await Gateway.create(config, options);
    const used = new Set([...config.routes.flatMap((r) => r.filters.map(filterPlugin)), ...config.services]);
    const summary: ValidationSummary = {
      plugins: gateway.generation.plugins.size,
      services: config.services.length,
      unused: config.plugins.filter((p) => !used.has(p.name)).length,
      routes: config.routes.length,
      clusters: config.clusters.length,
      functions: config.functions.length,
    };
    gateway.dispose();
    return summary;
  }

  /** Ends a gateway never started (or that failed to): roots get on_done, timers, callouts, pools and functions stop at once. */
  dispose(): void {
    for (const g of [...this.generations]) {
      g.dispose();
      // Nothing was served, so nothing is owed a graceful close (a service's callout must not keep the process alive).
      for (const cluster of g.clusters.values()) cluster.destroy();
    }
    this.generations.clear();
    this.live.close();
    void this.functions.close();
    void this.closeSharedState();
  }

  /** Once, after every root context has ended (their on_done may still write shared data). */
  private closeSharedState(): Promise<void> {
    return (this.sharedStateClosed ??= this.sharedState.close().catch((err: unknown) => {
      this.logger.error({ backend: this.sharedState.backend, err: (err as Error)?.message ?? String(err) }, 'closing the shared state failed');
    }));
  }

  /** A generation for `config`, with the edge functions it names (they switch over with it). */
  private build(config: GatewayConfig): Promise<Generation> {
    return this.functions.around(config, () => Generation.build(config, {
      sources: this.live.control,
      functions: this.functions.host,
      pool: this.pool,
      logger: this.logger,
      hooks: {
        requestDone: (flow) => this.traffic.requestDone(flow),
        upstreamError: (flow, code) => this.traffic.upstreamError(flow, code),
        upstreamRetry: (flow, reason) => this.traffic.upstreamRetry(flow, reason),
        retryBudgetExhausted: (flow) => this.traffic.retryBudgetExhausted(flow),
        // After the last request's own filter times (the generation reports requestDone first).
        disposed: (generation) => {
          this.generations.delete(generation);
          this.forgetGonePlugins();
        },
      },
    })).then((generation) => {
      this.generations.add(generation);
      return generation;
    });
  }

  /** Binds every listener and the admin listener. */
  async start(): Promise<BoundAddresses> {
    const listeners = new Map<string, AddressInfo>();
    try {
      for (const l of this.config.listeners) {
        const server = createListener({
          current: () => this.generation,
          draining: () => this.isDraining,
          notFound: (req, seconds, bytesOut) => this.traffic.notFound(req, seconds, bytesOut),
          upgradeError: (err, req) => this.logger.warn({ err: err.message, path: req.url }, 'websocket proxy error'),
          rejected: (req, status, reason) => this.traffic.edgeRequest(l.name, status, reason, req.method ?? null, req.url ?? null, req.socket),
          clientError: (status, reason, details, socket) => this.traffic.edgeRequest(l.name, status, reason, null, null, socket as { remoteAddress?: string }, details),
          connectionDropped: () => this.traffic.connectionDropped(l.name),
          serverError: (err) => this.logger.error({ listener: l.name, err: err.message, code: (err as { code?: string }).code }, 'listener error'),
          tlsError: (err, socket) => this.traffic.tlsError(l.name, err, socket as { remoteAddress?: string }),
          http2: {
            streamReset: (code) => this.metrics.http2Resets.inc({ listener: l.name, code: String(code) }),
            rapidReset: (client, resets, streams) => this.traffic.rapidReset(l.name, client, resets, streams),
          },
        }, l, this.tls.get(l.name));
        this.servers.set(l.name, server);
        server.on('upgrade', (_req: IncomingMessage, socket: Duplex) => {
          this.tunnels.add(socket);
          socket.once('close', () => this.tunnels.delete(socket));
        });
        listeners.set(l.name, await listen(server, l.port, l.address, `listener "${l.name}"`));
      }
    } catch (err) {
      // Never half up: close the listeners already bound. The admin listener binds last, so
      // /readyz never answered for a gateway that could not bind all of its listeners.
      await Promise.all([...this.servers].map(([name, s]) => closeServer(s, `listener "${name}"`, this.logger)));
      this.servers.clear();
      throw err;
    }
    let admin: AddressInfo | null = null;
    if (!this.worker) {
      this.admin = createAdminServer({
        metrics: this.metrics.registry,
        notReadyReason: () => this.notReadyReason(),
        plugins: () => this.live.control.list(), // each plugin, its versions, modules, health and counters
        routes: this.live.routes(),
      });
      admin = await listen(this.admin, this.config.admin.port, this.config.admin.address, 'the admin listener');
      // Accept errors (EMFILE) after the bind must not end the process, nor go unheard.
      this.admin.on('error', (err: NodeJS.ErrnoException) => this.logger.error({ err: err.message, code: err.code }, 'admin listener error'));
    }
    this.started = true;
    this.logger.info({
      listeners: Object.fromEntries([...listeners].map(([n, a]) => [n, `${a.address}:${a.port}`])),
      admin: admin === null ? null : `${admin.address}:${admin.port}`,
      ...(this.worker ? { pid: process.pid } : {}),
    }, this.worker ? 'worker serving' : 'edge-gateway started');
    return { listeners, admin };
  }

  /** Why /readyz answers 503, or null: starting, draining, or Redis away when the config asks for it. */
  private notReadyReason(): string | null {
    if (this.isDraining) return 'draining';
    if (!this.started) return 'starting';
    // The start's sharedState, as the backend itself (a reload's waits for the next restart).
    const s = this.sharedStateConfig;
    if (s.backend === 'redis' && s.readyWithRedisOnly && this.sharedState.replication()?.connected === false) return 'Redis unreachable';
    return null;
  }

  /**
   * Applies a new configuration: a new generation is built beside the old one, new requests go to
   * it, and the old one ends with its last request. On any error the old configuration keeps
   * serving and the error is thrown. Listener and admin addresses and sharedState are fixed until restart.
   */
  reload(config: GatewayConfig): Promise<void> {
    // One at a time with plugin changes: the new generation starts from the states they leave.
    const done = this.live.reload(config, () => this.applyReload(config));
    done.then(() => this.metrics.reloads.inc({ result: 'applied' }), () => this.metrics.reloads.inc({ result: 'rejected' }));
    return done;
  }

  private async applyReload(config: GatewayConfig): Promise<void> {
    if (this.isDraining) throw draining();
    // Certificates first: a bad one rejects the reload before anything is built.
    const installTls = this.tls.prepare(config.listeners);
    // The log level applies at once, so the new plugins' start-up logs already follow it.
    const level = this.logger.level;
    this.logger.level = config.log.level;
    const next = await this.build(config).catch((err: unknown) => {
      this.logger.level = level;
      throw err;
    });
    if (this.isDraining) {
      // The drain began while this was building: it must not outlive the drain.
      next.dispose();
      this.logger.level = level;
      throw draining();
    }
    const previous = this.generation;
    this.config = config;
    this.generation = next;
    this.live.adopt(next);
    installTls((name) => this.servers.get(name) as unknown as { setSecureContext(o: object): void } | undefined);
    previous.retire();
    this.forgetGonePlugins();
    // Certificates were installed above; the rest of a listener (and whether it speaks TLS) waits for a restart.
    const bound = (ls: GatewayConfig['listeners']): string => JSON.stringify(ls.map(({ tls, ...l }) => ({ ...l, tls: tls !== undefined })));
    if (bound(config.listeners) !== bound(previous.config.listeners)
      || config.admin.address !== previous.config.admin.address || config.admin.port !== previous.config.admin.port) {
      this.logger.warn('listener and admin addresses changed: they take effect at the next restart');
    }
    if (JSON.stringify(config.sharedState) !== JSON.stringify(previous.config.sharedState)) {
      this.logger.warn('sharedState changed: it takes effect at the next restart');
    }
    this.logger.info({ routes: config.routes.length, plugins: next.plugins.size }, 'configuration reloaded');
  }

  /**
   * Graceful stop: /readyz 503, serving on for `drainDelayMs` (without one the listeners close in that same turn), stop
   * accepting, in-flight requests get `drainTimeoutMs`; every stream and root ends. A second call waits for the same drain.
   */
  shutdown(): Promise<void> {
    return (this.stopping ??= this.drain());
  }

  private async drain(): Promise<void> {
    this.isDraining = true;
    const delay = this.config.drainDelayMs;
    if (delay > 0) {
      this.logger.info({ drainDelayMs: delay }, 'draining: /readyz answers 503; the listeners serve on until the delay is over');
      await new Promise((r) => setTimeout(r, delay));
    }
    const closed = [...this.servers].map(([name, s]) => closeServer(s, `listener "${name}"`, this.logger));
    for (const s of this.servers.values()) s.closeIdleConnections();
    const deadline = Date.now() + this.config.drainTimeoutMs;
    while ((this.inflight() > 0 || this.tunnels.size > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const s of this.servers.values()) s.closeAllConnections();
    for (const socket of this.tunnels) socket.destroy();
    await Promise.all(closed);
    // NB: a server reports closed before its sockets' 'close' events, which end the streams cut
    // off above; wait for those (bounded) so every stream ends before its root context does.
    const settle = Date.now() + 1000;
    while (this.inflight() > 0 && Date.now() < settle) await new Promise((r) => setTimeout(r, 5));
    this.live.close();
    for (const g of [...this.generations]) g.dispose();
    await this.functions.close();
    await this.closeSharedState();
    if (this.admin !== null) {
      const closing = closeServer(this.admin, 'the admin listener', this.logger);
      this.admin.closeAllConnections();
      await closing;
    }
    this.logger.info('edge-gateway stopped');
  }

  private inflight(): number {
    return [...this.generations].reduce((n, g) => n + g.inflight, 0);
  }

  /** Drops the filter timers of plugins that no live generation runs (one a reload removed). */
  private forgetGonePlugins(): void {
    const live = new Set<string>();
    for (const g of this.generations) for (const name of g.plugins.keys()) live.add(name);
    this.metrics.keepFilterTimers(live);
  }

  /**
   * Generations alive: the current one and any retired one still serving requests. One when no
   * reload is draining (for diagnostics and the leak tests).
   */
  generationsAlive(): number {
    return this.generations.size;
  }

  /** Connections each listener closed at accept since start (maxConnections). */
  connectionsDropped(listener: string): number {
    return this.traffic.connectionsDropped(listener);
  }
}

function draining(): GatewayError {
  return new GatewayError('GW_ERR_GATEWAY_DRAINING', 'the gateway is draining: the configuration is not reloaded');
}

/**
 * Builds a gateway for `config` (from `loadConfigFile` or `parseConfig`): every module compiled,
 * every plugin and service started, nothing bound yet. `start()` binds, `shutdown()` drains.
 */
export function createGateway(config: GatewayConfig, options: GatewayOptions = {}): Promise<Gateway> {
  return Gateway.create(config, options);
}
