/**
 * The primary of a box with `workers: N` (node:cluster), as nginx's master: it forks N workers
 * that each run the whole gateway on the shared listeners (the cluster hands connections out),
 * and owns what is one per box:
 * - the admin listener: /metrics is every worker's metrics summed (prom-client's
 *   AggregatorRegistry), /readyz is ready once every worker is, the plugin API's reads (and
 *   GET /clusters) are a worker's answer and its changes go to every worker (answered once all
 *   have applied them);
 * - shared data and shared queues of the memory backend (hub.ts): the workers replicate shared
 *   data through it, so a rate limit is exact across them, and it hands each queue item to a
 *   worker that registered the queue (with Redis, each worker talks to Redis itself);
 * - signals: SIGHUP reloads every worker (each reads the file again), SIGTERM/SIGINT drain them all
 *   and then exit;
 * - a worker that dies after it served is replaced at once; one that dies before it ever served
 *   (a configuration it cannot run) stops the box with its exit code, rather than a fork loop;
 * - workers with a core each or less collect garbage on their main thread (gc-threads.ts).
 */
import cluster, { type Worker } from 'node:cluster';
import type { AddressInfo } from 'node:net';
import { availableParallelism } from 'node:os';
import { AggregatorRegistry } from 'prom-client';
import { createAdminServer } from '../admin/server.js';
import { isAdminApiPath, readCall, sendAnswer, type AdminAnswer, type AdminCall } from '../control/admin-api.js';
import type { GatewayConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import { Hub, isHubMessage } from '../shared-state/hub.js';
import { workerExecArgv } from './gc-threads.js';
import { isControl, WORKER_ENV, type ControlMessage } from './messages.js';

/** How much longer than drainTimeoutMs the primary waits for its workers before it kills them. */
const STOP_GRACE_MS = 5000;

export interface Box {
  /** Resolves with the exit code once the box has stopped (SIGTERM, or a worker that could not start). */
  readonly stopped: Promise<number>;
}

export async function runPrimary(config: GatewayConfig, count: number, logger: Logger): Promise<Box> {
  cluster.setupPrimary({ serialization: 'advanced', execArgv: workerExecArgv(count, availableParallelism(), process.execArgv) });
  const workers = new Map<number, Worker>();
  const hub = config.sharedState.backend === 'memory' ? new Hub<Worker>(config.sharedState.maxBytesPerVm, {
    send: (to, m) => { if (to.isConnected()) to.send(m); },
    workers: () => workers.values(),
  }) : null;
  const ready = new Set<number>();
  let listeners: Record<string, string> = {};
  let stopping = false;
  let finish: (code: number) => void = () => undefined;
  const stopped = new Promise<number>((r) => { finish = r; });
  let nextQuestion = 1;
  const answers = new Map<number, (answer: AdminAnswer) => void>();
  /** "edge-gateway started" went out (once, when every worker first served). */
  let announced = false;

  const fork = (index: number): void => {
    const worker = cluster.fork({ [WORKER_ENV]: String(index) });
    workers.set(index, worker);
    let served = false;
    worker.on('message', (m: unknown) => {
      if (hub !== null && isHubMessage(m)) hub.handle(m, worker);
      else if (isControl(m)) onControl(index, m, () => { served = true; });
    });
    worker.on('exit', (code, signal) => {
      if (workers.get(index) === worker) workers.delete(index);
      hub?.gone(worker);
      ready.delete(index);
      if (stopping) {
        if (workers.size === 0) done();
        return;
      }
      if (!served) {
        logger.error({ worker: index, code, signal }, 'a worker exited before it served: stopping the box');
        stop(code || 1);
        return;
      }
      logger.warn({ worker: index, pid: worker.process.pid, code, signal }, 'a worker exited: starting another');
      fork(index);
    });
  };

  const onControl = (index: number, m: ControlMessage, served: () => void): void => {
    if (m.edge === 'ready') {
      served();
      ready.add(index);
      listeners = m.listeners;
      if (ready.size === count && !announced) announce();
    } else if (m.edge === 'admin') {
      answers.get(m.id)?.(m.answer);
      answers.delete(m.id);
    }
  };

  const aggregator = new AggregatorRegistry();
  const admin = createAdminServer({
    metrics: { metrics: () => aggregator.clusterMetrics(), contentType: aggregator.contentType },
    notReadyReason: () => (stopping ? 'draining' : ready.size < count ? `starting (${ready.size} of ${count} workers ready)` : null),
    plugins: () => [],
    routes: async (req, res) => {
      if (!isAdminApiPath((req.url ?? '/').split('?')[0])) return false;
      sendAnswer(res, await forward(await readCall(req)));
      return true;
    },
  });
  const ask = (worker: Worker, call: AdminCall, ms: number): Promise<AdminAnswer> => {
    const id = nextQuestion++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        answers.delete(id);
        resolve({ status: 504, body: { error: 'GW_ERR_PLUGIN_CHANGE', message: `worker ${worker.id} did not answer within ${ms} ms` } });
      }, ms);
      answers.set(id, (answer) => { clearTimeout(timer); resolve(answer); });
      worker.send({ edge: 'admin?', id, call } satisfies ControlMessage);
    });
  };
  /**
   * Reads go to one worker (each runs the same plugins); changes to every worker, answered with the
   * first worker's answer when all agree, else 500 with each worker's (one refused what another took).
   */
  const forward = async (call: AdminCall): Promise<AdminAnswer> => {
    const live = [...workers.values()].filter((w) => w.isConnected());
    const reading = call.method === 'GET' || call.method === 'HEAD';
    if (live.length === 0) return { status: 503, body: { error: 'GW_ERR_GATEWAY_DRAINING', message: 'no worker is running' } };
    const got = await Promise.all((reading ? live.slice(0, 1) : live).map((w) => ask(w, call, reading ? 2000 : 60_000)));
    if (got.every((a) => a.status === got[0].status)) return got[0];
    const refused = got.find((a) => a.status !== 200)!;
    return { status: 500, body: { ...(refused.body as object), message: `the workers answered differently: ${got.map((a, i) => `worker ${i}: ${a.status}`).join(', ')}`, workers: got } };
  };
  await new Promise<void>((resolve, reject) => {
    admin.once('error', reject);
    admin.listen(config.admin.port, config.admin.address, () => resolve());
  });
  admin.on('error', (err: Error) => logger.error({ err: err.message }, 'admin listener error'));

  const announce = (): void => {
    announced = true;
    const a = admin.address() as AddressInfo;
    logger.info({ listeners, admin: `${a.address}:${a.port}`, workers: count }, 'edge-gateway started');
  };

  let exitCode = 0;
  let killTimer: NodeJS.Timeout | undefined;
  const stop = (code: number): void => {
    if (stopping) return;
    stopping = true;
    exitCode = code;
    killTimer = setTimeout(() => { for (const w of workers.values()) w.process.kill('SIGKILL'); }, config.drainDelayMs + config.drainTimeoutMs + STOP_GRACE_MS);
    for (const w of workers.values()) w.process.kill('SIGTERM');
    if (workers.size === 0) done();
  };
  const done = (): void => {
    clearTimeout(killTimer);
    admin.close(() => finish(exitCode));
    admin.closeAllConnections();
  };

  process.on('SIGTERM', () => stop(0));
  process.on('SIGINT', () => stop(0));
  process.on('SIGHUP', () => {
    if (stopping) return;
    logger.info({ workers: workers.size }, 'reloading the configuration in every worker');
    for (const w of workers.values()) w.process.kill('SIGHUP');
  });

  for (let i = 0; i < count; i++) fork(i);
  return { stopped };
}
