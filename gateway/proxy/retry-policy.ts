/**
 * Envoy's retry policy of a route (RouteAction.retry_policy), compiled once per configuration, and
 * the retry budget of a cluster (circuit_breakers.thresholds.retry_budget).
 *
 * Which outcome of a try each condition retries follows Envoy's RetryStateImpl:
 * - an answer (wouldRetryFromHeaders): 5xx any 5xx status; gateway-error 502, 503, 504;
 *   retriable-status-codes the listed statuses. An answer carrying `x-envoy-ratelimited` is never
 *   retried (none of these conditions is Envoy's envoy-ratelimited);
 * - no answer (wouldRetryFromReset): reset, 5xx and gateway-error retry every failure to answer
 *   (connect failure, disconnect, reset, per-try timeout: Envoy resets a try past its per-try
 *   timeout with LocalReset); connect-failure only a connection that could not be made. Overflow
 *   is never retried (Envoy), nor is our queue's timeout, a request undici refused as malformed,
 *   or a pool closed under it (the gateway is stopping).
 *
 * The metric's reason is the most specific condition of the route that matched:
 * connect-failure, then reset, gateway-error, 5xx for a failure; retriable-status-codes, then
 * gateway-error, 5xx for an answer.
 */
import type { RetryBudgetConfig, RetryConfig } from '../config/schema.js';
import { CLUSTER_OVERFLOW, QUEUE_TIMEOUT } from './upstream-queue.js';

export type RetryReason = RetryConfig['retryOn'][number];

const ON_5XX = 1;
const ON_GATEWAY_ERROR = 2;
const ON_RESET = 4;
const ON_CONNECT_FAILURE = 8;
const ON_STATUS_CODES = 16;
const BITS: Record<RetryReason, number> = {
  '5xx': ON_5XX, 'gateway-error': ON_GATEWAY_ERROR, reset: ON_RESET, 'connect-failure': ON_CONNECT_FAILURE, 'retriable-status-codes': ON_STATUS_CODES,
};

/** The code of a try abandoned past its per-try timeout (Envoy's upstream_per_try_timeout). */
export const PER_TRY_TIMEOUT = 'per_try_timeout';

/** Failures that are no failure of the endpoint to answer: never retried. */
const NOT_RETRIABLE = new Set([CLUSTER_OVERFLOW, QUEUE_TIMEOUT, 'UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED',
  'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH', 'UND_ERR_ABORTED', 'UND_ERR_CLOSED', 'UND_ERR_DESTROYED']);

/** A connection that could not be made (Envoy's ConnectionFailure reset reason). */
const CONNECT_FAILURES = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH',
  'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'EADDRNOTAVAIL', 'ETIMEDOUT']);

/** A route's retry policy as the data plane runs it. */
export interface RetryPolicy {
  /** The retryOn conditions, as bits. */
  readonly on: number;
  readonly statusCodes: readonly number[];
  readonly numRetries: number;
  /** 0: a try may wait for what is left of the route's timeout. */
  readonly perTryTimeoutMs: number;
  readonly baseMs: number;
  readonly maxMs: number;
  readonly bufferBytes: number;
}

export function compileRetryPolicy(config: RetryConfig | undefined): RetryPolicy | null {
  if (config === undefined) return null;
  let on = 0;
  for (const condition of config.retryOn) on |= BITS[condition];
  return Object.freeze({
    on,
    statusCodes: Object.freeze([...config.retriableStatusCodes]),
    numRetries: config.numRetries,
    perTryTimeoutMs: config.perTryTimeoutMs ?? 0,
    baseMs: config.backoff.baseMs,
    maxMs: config.backoff.maxMs ?? config.backoff.baseMs * 10,
    bufferBytes: config.bufferBytes,
  });
}

/** The condition of `policy` that retries an answer with `status`, or null. */
export function retryOnStatus(policy: RetryPolicy, status: number, rateLimited: boolean): RetryReason | null {
  if (rateLimited) return null;
  const on = policy.on;
  if ((on & ON_STATUS_CODES) !== 0 && policy.statusCodes.includes(status)) return 'retriable-status-codes';
  if ((on & ON_GATEWAY_ERROR) !== 0 && (status === 502 || status === 503 || status === 504)) return 'gateway-error';
  if ((on & ON_5XX) !== 0 && status >= 500 && status <= 599) return '5xx';
  return null;
}

/** The condition of `policy` that retries a try that failed with `code` (no answer), or null. */
export function retryOnFailure(policy: RetryPolicy, code: string): RetryReason | null {
  if (NOT_RETRIABLE.has(code)) return null;
  const on = policy.on;
  if ((on & ON_CONNECT_FAILURE) !== 0 && CONNECT_FAILURES.has(code)) return 'connect-failure';
  if ((on & ON_RESET) !== 0) return 'reset';
  if ((on & ON_GATEWAY_ERROR) !== 0) return 'gateway-error';
  if ((on & ON_5XX) !== 0) return '5xx';
  return null;
}

/**
 * The back-off before retry `n` (1 for the first): a random time in [0, interval), the interval
 * doubling from baseMs up to maxMs (Envoy's JitteredExponentialBackOffStrategy, full jitter).
 */
export function backoffMs(policy: RetryPolicy, n: number, random: () => number = Math.random): number {
  const interval = Math.min(policy.baseMs * 2 ** (n - 1), policy.maxMs);
  return Math.floor(random() * interval);
}

/**
 * A cluster's retry budget: how many retries are in flight to it, from every route. A retry
 * counts from when it is scheduled (its back-off included) until its try answers or fails, or the
 * request ends (Envoy's resetRetry).
 */
export class RetryBudget {
  inFlight = 0;
  readonly percent: number;
  readonly minConcurrency: number;

  constructor(config: RetryBudgetConfig) {
    this.percent = config.percent;
    this.minConcurrency = config.minConcurrency;
  }

  /** Takes a retry when fewer are in flight than the budget allows for `active` requests. */
  acquire(active: number): boolean {
    // Envoy: max(budget_percent / 100 × (active + pending requests), min_retry_concurrency).
    const allowed = Math.max(Math.floor((this.percent / 100) * active), this.minConcurrency);
    if (this.inFlight >= allowed) return false;
    this.inFlight++;
    return true;
  }

  release(): void {
    this.inFlight--;
  }
}
