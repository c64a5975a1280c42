/**
 * The retries of one request on a route with a retry policy (Envoy's router retry state). When a
 * try fails before answering, or answers with a status the policy retries, and nothing of its
 * answer went to the response filters or the client yet, the answer is dropped and another try
 * starts after a back-off: at another endpoint when the cluster has one (cluster.pick() again,
 * as Envoy's previous_hosts predicate), with the same request headers and the same body bytes
 * (replay-body.ts). The filters ran once; retries happen below them, as in Envoy's router.
 *
 * Every try is its own UpstreamExchange and its own dispatch through the endpoint's queue, so
 * whoever watches endpoints (outlier detection) sees the outcome of each.
 *
 * Bounds: numRetries; the cluster's retry budget; a body small enough to keep; and the route's
 * timeout over all tries together (Envoy: the route timeout includes every retry), which starts
 * with the first try once the request body went out. Each try waits for its response headers at
 * most perTryTimeoutMs, and never past that overall deadline; a try past it is abandoned as failed
 * (`per_try_timeout`, or undici's UND_ERR_HEADERS_TIMEOUT when the overall deadline cut it).
 *
 * Any method is retried when the condition holds, POST included: Envoy does not look at the method.
 */
import type { Cluster, Endpoint } from './cluster.js';
import type { RequestFlow } from './flow.js';
import type { FlowDirection } from './flow-direction.js';
import { ReplayBody, type ReplayOwner } from './replay-body.js';
import { PER_TRY_TIMEOUT, backoffMs, retryOnFailure, retryOnStatus, type RetryPolicy, type RetryReason } from './retry-policy.js';
import type { UpstreamExchange, UpstreamHeaders } from './upstream-exchange.js';

class TryTimeout extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = 'TryTimeout';
  }
}

// One instance each, as the queue's errors: an answer, not a bug, and no stack per try.
const PER_TRY_TIMEOUT_ERROR = new TryTimeout(PER_TRY_TIMEOUT, 'the try got no response headers within perTryTimeoutMs');
const ROUTE_TIMEOUT_ERROR = new TryTimeout('UND_ERR_HEADERS_TIMEOUT', 'the tries got no response headers within the route\'s timeout');

/** Requests of the cluster in flight and waiting: what the retry budget is a share of. */
function activeRequests(cluster: Cluster): number {
  let active = cluster.admission.pending;
  for (const endpoint of cluster.endpoints) active += endpoint.queue.active;
  return active;
}

function retryNow(loop: RetryLoop): void {
  loop.retryNow();
}

function tryTimedOut(loop: RetryLoop): void {
  loop.tryTimedOut();
}

export class RetryLoop implements ReplayOwner {
  /** The request body kept for retries; null when the request has none. */
  readonly body: ReplayBody | null;
  private retriesLeft: number;
  /** When the route's timeout ends every try (performance.now()); 0 until the first try has the whole request. */
  private deadline = 0;
  /** The try waiting for its answer, or null (between tries, or once answered). */
  private current: UpstreamExchange | null = null;
  private tryTimer: NodeJS.Timeout | null = null;
  /** The try timer is the per-try timeout (else the overall deadline). */
  private perTryBound = false;
  private backoff: NodeJS.Timeout | null = null;
  /** This request holds a retry of the cluster's budget. */
  private budgeted = false;

  /** `request`: the request direction, its headers final and its body pipeline set when body filters run. */
  constructor(private readonly flow: RequestFlow, private readonly policy: RetryPolicy, request: FlowDirection) {
    this.retriesLeft = policy.numRetries;
    this.body = request.eos ? null : new ReplayBody(this, flow.req, request, policy.bufferBytes);
  }

  /** A try is about to go out as `exchange`: its timeout starts once the whole request went too. */
  started(exchange: UpstreamExchange): void {
    this.current = exchange;
    if (this.body === null || this.body.ended) this.armTry();
  }

  bodyEnded(): void {
    if (this.current !== null && this.tryTimer === null) this.armTry();
  }

  /** The current try answered `status`: true when it is retried instead (the answer is dropped). */
  answered(status: number, headers: UpstreamHeaders): boolean {
    return this.decide(retryOnStatus(this.policy, status, headers['x-envoy-ratelimited'] !== undefined));
  }

  /** The current try failed with `code` before any answer: true when it is retried instead. */
  failed(code: string): boolean {
    return this.decide(retryOnFailure(this.policy, code));
  }

  /** The request is answered otherwise, or over: no more tries. */
  close(): void {
    this.endTry();
    if (this.backoff !== null) clearTimeout(this.backoff);
    this.backoff = null;
    this.body?.close();
  }

  retryNow(): void {
    this.backoff = null;
    // Retries exist only on routes to a cluster (validate.ts refuses them on a function's).
    const cluster = this.flow.route.cluster!;
    const failed = this.flow.endpoint;
    let endpoint: Endpoint = cluster.pick();
    for (let i = 1; i < cluster.endpoints.length && endpoint === failed; i++) endpoint = cluster.pick();
    this.flow.attempt(endpoint);
  }

  tryTimedOut(): void {
    this.tryTimer = null;
    // The route's timeout is over: no retry, whatever the clock says (a timer may fire a little
    // before performance.now() reaches the deadline: Node measures from the loop's cached time).
    if (!this.perTryBound) this.retriesLeft = 0;
    this.current?.timeOut(this.perTryBound ? PER_TRY_TIMEOUT_ERROR : ROUTE_TIMEOUT_ERROR);
  }

  private decide(reason: RetryReason | null): boolean {
    const exchange = this.current;
    this.endTry();
    if (reason !== null && this.retry(reason)) {
      exchange?.abandon();
      return true;
    }
    // This outcome is final: the body still goes on to the upstream, but nothing keeps it now.
    this.body?.forget();
    return false;
  }

  /** Schedules a retry for `reason` when every bound allows one. */
  private retry(reason: RetryReason): boolean {
    if (this.retriesLeft === 0 || (this.body !== null && !this.body.replayable)) return false;
    const delay = backoffMs(this.policy, this.policy.numRetries - this.retriesLeft + 1);
    if (this.deadline !== 0 && performance.now() + delay >= this.deadline) return false;
    const cluster = this.flow.route.cluster!;
    if (!cluster.retryBudget.acquire(activeRequests(cluster))) {
      this.flow.env.retryBudgetExhausted(this.flow);
      return false;
    }
    this.budgeted = true;
    this.retriesLeft--;
    this.flow.env.upstreamRetry(this.flow, reason);
    this.backoff = setTimeout(retryNow, delay, this);
    return true;
  }

  /** The current try is over: its timer stops, and the retry it was (if one) leaves the budget. */
  private endTry(): void {
    this.current = null;
    if (this.tryTimer !== null) clearTimeout(this.tryTimer);
    this.tryTimer = null;
    if (this.budgeted) {
      this.budgeted = false;
      this.flow.route.cluster!.retryBudget.release();
    }
  }

  private armTry(): void {
    const now = performance.now();
    if (this.deadline === 0) this.deadline = now + this.flow.route.timeoutMs;
    const left = this.deadline - now;
    const perTry = this.policy.perTryTimeoutMs;
    this.perTryBound = perTry > 0 && perTry < left;
    this.tryTimer = setTimeout(tryTimedOut, Math.max(1, this.perTryBound ? perTry : left), this);
  }
}
