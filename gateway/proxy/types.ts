/** What the request flow needs from the gateway around it: its route, and hooks for the end. */
import type { FunctionTarget } from './function-exchange.js';
import type { Cluster } from './cluster.js';
import type { LivePlugin } from './live-plugin.js';
import type { RequestFlow } from './flow.js';
import type { RetryPolicy, RetryReason } from './retry-policy.js';

/** A route as the data plane runs it: its cluster and filter chain resolved. */
export interface RouteRuntime {
  readonly name: string;
  /** The upstream; null on a route answered by an edge function. */
  readonly cluster: Cluster | null;
  /** The edge function answering the route, by name (looked up per request: swaps replace it), or null. */
  readonly fn: string | null;
  /** The filter chain: each plugin, and which of its configurations this route runs (0: the plugin's own). */
  readonly filters: readonly RouteFilter[];
  /** Largest body a filter may buffer (413 for requests, 500 for responses beyond it). */
  readonly bodyLimit: number;
  /** headersTimeout and bodyTimeout of the upstream request; with retries, the bound of all tries together. */
  readonly timeoutMs: number;
  /** The retry policy, or null: no retries (and nothing allocated for them). */
  readonly retry: RetryPolicy | null;
}

export interface RouteFilter {
  readonly plugin: LivePlugin;
  readonly variant: number;
}

export interface NodeInfo {
  readonly id: string;
  readonly cluster: string;
}

/** The scheme a listener's requests arrive with (the :scheme pseudo-header); the listener owns it. */
export type Scheme = 'http' | 'https';

export interface FlowEnv {
  readonly node: NodeInfo;
  /** Called once when the request is over (access log, metrics, generation accounting). */
  done(flow: RequestFlow): void;
  upstreamError(flow: RequestFlow, code: string): void;
  /** A retry of this request was scheduled; `reason` is the condition of the route's retryOn that matched. */
  upstreamRetry(flow: RequestFlow, reason: RetryReason): void;
  /** A retry the route's policy allowed was refused by the cluster's retry budget. */
  retryBudgetExhausted(flow: RequestFlow): void;
  /** The response writer's guard caught an error writing this request's answer (one error log line). */
  writeFailed(flow: RequestFlow, err: unknown): void;
  /** The edge function of that name, as it runs now. */
  functionTarget(name: string): FunctionTarget | undefined;
}
