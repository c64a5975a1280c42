/**
 * The gateway's edge functions (gateway/functions/) wired to the rest of it: their outgoing
 * requests go through the current configuration's cluster callouts (the same clusters, pools and
 * checks as a filter's proxy_http_call), their figures to /metrics, their guests' output and their
 * cold starts over 5 ms to the log.
 */
import type { Registry } from 'prom-client';
import { FunctionMetrics } from './admin/function-metrics.js';
import type { GatewayConfig } from './config/schema.js';
import { GatewayError, type ErrorCode } from './errors.js';
import type { AdminReads } from './control/admin-api.js';
import { FunctionHost, type FunctionHostDeps, type FunctionPlan, type LiveFunction } from './functions/function-host.js';
import type { OutgoingFetch, PoolEvents } from './functions/function-pool.js';
import type { Logger } from './log.js';
import type { ClusterCallouts } from './proxy/callouts.js';

/** The product's alarm: a request that waited longer than this for an instance is a slow cold start. */
const COLD_START_ALARM_MS = 5;

const RESULTS: Partial<Record<ErrorCode, string>> = {
  GW_ERR_FUNCTION_TIMEOUT: 'timeout', GW_ERR_FUNCTION_FAILED: 'failed', GW_ERR_FUNCTION_OVERLOADED: 'overloaded', GW_ERR_FUNCTION_INSTANCE: 'failed',
};

export class EdgeFunctions {
  readonly host: FunctionHost;
  private readonly metrics: FunctionMetrics;
  private readonly lastAlarm = new Map<string, number>();

  constructor(private readonly logger: Logger, registers: Registry[], { cacheDir, store, callouts, read }: {
    cacheDir: string; store: FunctionHostDeps['store']; callouts: () => ClusterCallouts; read: FunctionHostDeps['read'];
  }) {
    this.host = new FunctionHost({
      cacheDir,
      store,
      read,
      rolledBack: (fn, why) => logger.warn({ function: fn }, `function ${fn}: canary rolled back: ${why}`),
      stepped: (fn, percent) => logger.info({ function: fn, percent }, percent >= 100 ? `function ${fn}: canary promoted` : `function ${fn}: canary at ${percent}%`),
      watched: (fn, message, error) => (error ? logger.warn : logger.info).call(logger, { function: fn }, `function ${fn}: ${message}`),
      fetch: (fn) => outgoing(fn, callouts),
      events: (fn) => this.events(fn),
    });
    this.metrics = new FunctionMetrics(registers, () => this.host.list().flatMap((f) => [f.pool, ...(f.canary === null ? [] : [f.canary])]).map((pool) => ({
      name: pool.name, ready: pool.readyCount, busy: pool.busyCount, queued: pool.queued,
    })));
  }

  /**
   * Runs `build` (a generation) with the functions `config` needs ready beside it: a function
   * that cannot start rejects before `build` runs; they switch over only once `build` succeeded.
   */
  async around<T>(config: GatewayConfig, build: () => Promise<T>): Promise<T> {
    const plan: FunctionPlan = await this.host.prepare(config.functions);
    try {
      const built = await build();
      plan.commit();
      return built;
    } catch (err) {
      await plan.abort();
      throw err;
    }
  }

  close(): Promise<void> {
    return this.host.close();
  }

  /** The admin API's view: each function's component and instances, and swaps. */
  api(): NonNullable<AdminReads['functions']> {
    const report = (f: LiveFunction): unknown => ({
      name: f.name, sha256: f.pool.component.sha256, source: f.source.label, signedBy: f.source.signedBy,
      instances: { configured: f.config.instances, ready: f.pool.readyCount, busy: f.pool.busyCount, queued: f.pool.queued },
      canary: f.canary === null ? null : { sha256: f.canary.component.sha256, source: f.canarySource?.label, percent: f.canaryPercent, ready: f.canary.readyCount, busy: f.canary.busyCount },
    });
    const live = (name: string): LiveFunction => {
      const f = this.host.get(name);
      if (f === undefined) throw new GatewayError('GW_ERR_PLUGIN_UNKNOWN', `no function named "${name}"`);
      return f;
    };
    return {
      list: () => this.host.list().map(report),
      canary: (name, change) => {
        const f = live(name);
        const kind = change === 'rollback' ? 'rollback' : change === 'promote' || change >= 100 ? 'promote' : 'canary';
        try {
          if (change === 'rollback') f.rollBack('rolled back through the admin API');
          else if (change === 'promote' || change >= 100) f.promote();
          else if (f.canary === null) throw new GatewayError('GW_ERR_PLUGIN_CHANGE', `function ${name} has no canary`);
          else f.canaryPercent = change;
        } catch (err) {
          this.metrics.changes.inc({ function: name, change: kind, result: 'rejected' });
          throw err;
        }
        this.metrics.changes.inc({ function: name, change: kind, result: 'applied' });
        // A promotion and a rollback log themselves (stepped, rolledBack).
        if (typeof change === 'number' && change < 100) this.logger.info({ function: name, percent: change }, `function ${name}: canary at ${change}%`);
        return report(f);
      },
      swap: async (name, bytes, label, signature) => {
        try {
          const live = await this.host.swap(name, bytes, label, signature);
          this.metrics.changes.inc({ function: name, change: 'swap', result: 'applied' });
          this.logger.info({ function: name, sha256: live.pool.component.sha256, source: label }, `function ${name}: swap: the new component serves new requests`);
          return report(live);
        } catch (err) {
          this.metrics.changes.inc({ function: name, change: 'swap', result: 'rejected' });
          this.logger.warn({ function: name, err: (err as Error).message }, `function ${name}: swap rejected, the running component keeps serving`);
          throw err;
        }
      },
    };
  }

  private events(fn: string): PoolEvents {
    const { metrics, logger } = this;
    // Once a second at most per function and kind: under a burst every request may wait.
    const alarm = (kind: string, ms: number, message: string): void => {
      if (ms <= COLD_START_ALARM_MS) return;
      const key = `${fn}\0${kind}`;
      const now = Date.now();
      if (now - (this.lastAlarm.get(key) ?? 0) < 1000) return;
      this.lastAlarm.set(key, now);
      logger.warn({ function: fn, ms: Math.round(ms * 10) / 10 }, message);
    };
    return {
      instantiated: (ms) => {
        metrics.instantiate.observe({ function: fn }, ms / 1000);
        alarm('instance', ms, `function ${fn}: making an instance ready took over ${COLD_START_ALARM_MS} ms (off the request path)`);
      },
      waited: (ms) => {
        metrics.coldStart.observe({ function: fn }, ms / 1000);
        alarm('wait', ms, `function cold start over ${COLD_START_ALARM_MS} ms: no warm instance was ready`);
      },
      guestLog: (stream, text) => logger.info({ function: fn, stream }, text),
      threadFailed: (message) => logger.error({ function: fn }, message),
      finished: (code) => metrics.requests.inc({ function: fn, result: code === null ? 'ok' : RESULTS[code] ?? 'failed' }),
    };
  }
}

/** A function's outgoing request as a callout to the cluster its authority names. */
function outgoing(fn: string, callouts: () => ClusterCallouts): OutgoingFetch {
  const origin = { pluginName: `function:${fn}`, rootId: '', vmId: '' };
  return (request, timeoutMs) => new Promise((resolve) => {
    const status = callouts().httpCall({
      cluster: request.authority,
      headers: [':method', request.method, ':path', request.pathWithQuery, ':authority', request.authority, ':scheme', request.scheme, ...request.headers],
      body: request.body,
      trailers: [],
      timeoutMs: timeoutMs ?? 0,
      origin,
    }, (res) => {
      if (res === null) {
        resolve({ ok: false, code: 'connection-refused', message: `cluster ${request.authority}: no answer (reset or refused)` });
        return;
      }
      const headers: string[] = [];
      let code = 502;
      for (let i = 0; i + 1 < res.headers.length; i += 2) {
        if (res.headers[i] === ':status') code = Number(res.headers[i + 1]);
        else headers.push(res.headers[i]!, res.headers[i + 1]!);
      }
      resolve({ ok: true, status: code, headers, body: res.body });
    });
    // The cluster is gone (a reload removed it) or the request's fields were refused.
    if (status !== 0) resolve({ ok: false, code: 'HTTP-request-denied', message: `cluster ${request.authority}: refused (status ${status})` });
  });
}
