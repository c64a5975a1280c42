/**
 * What the main thread and a function's worker thread say to each other (function-pool.ts and
 * function-worker.ts). Header lists are flat [name, value, name, value…] arrays of latin1 strings,
 * as the gateway's header maps hold them; bodies are byte arrays.
 *
 * Two channels: the worker's own port carries requests to the worker and everything the worker
 * reports; a second port (`calls`) carries the answers to the worker's outgoing requests, which a
 * worker blocked inside a guest call reads synchronously (receiveMessageOnPort) after the main
 * thread bumps the shared `signal` word and wakes it with Atomics.notify.
 */

/** One HTTP request: the function's incoming request, or its outgoing one. */
import type { MessagePort } from 'node:worker_threads';

export interface WireRequest {
  readonly method: string;
  readonly scheme: string;
  readonly authority: string;
  readonly pathWithQuery: string;
  readonly headers: string[];
  readonly body: Uint8Array;
}

/** What a worker starts with (workerData). */
export interface WorkerSetup {
  readonly name: string;
  /** URL of the transpiled bindings (an ES module exporting instantiate()). */
  readonly glueUrl: string;
  /** The component's core modules, compiled once on the main thread, by the names the bindings ask for. */
  readonly modules: Record<string, WebAssembly.Module>;
  /** The interfaces the bindings import, by the names they use. */
  readonly imports: string[];
  readonly environment: Array<[string, string]>;
  /** Hosts (cluster names) outgoing requests may name; any other is refused. */
  readonly allowedHosts: string[];
  /** Largest response body a function may write, and largest body an outgoing request may carry. */
  readonly bodyLimit: number;
  /** After a clean request: restore the instance's start-up state, keep it as is, or make a new one. */
  readonly reuse: 'snapshot' | 'keep' | 'fresh';
  readonly signal: SharedArrayBuffer;
  readonly calls: MessagePort;
}

export type ToWorker = { readonly type: 'request'; readonly id: number; readonly request: WireRequest };

export type FromWorker =
  /** An instance is ready for a request: a new one (`ms` to instantiate it), or the last one kept. */
  | { readonly type: 'ready'; readonly ms: number; readonly reused: boolean }
  /** The instance could not be made (bad component, out of memory): the worker is useless. */
  | { readonly type: 'broken'; readonly message: string }
  | { readonly type: 'head'; readonly id: number; readonly status: number; readonly headers: string[] }
  | { readonly type: 'data'; readonly id: number; readonly chunk: Uint8Array }
  /** The response is complete: its last bytes (held back so they travel with the end), then trailers. */
  | { readonly type: 'end'; readonly id: number; readonly trailers: string[] | null; readonly chunk: Uint8Array | null }
  /** The function failed the request (a trap, an exit, an error response, no complete response). */
  | { readonly type: 'fail'; readonly id: number; readonly message: string }
  /** The guest call returned; a fresh instance follows unless the instance is reused. */
  | { readonly type: 'done'; readonly id: number; readonly reused: boolean }
  | { readonly type: 'fetch'; readonly id: number; readonly call: number; readonly request: WireRequest; readonly timeoutMs: number | null }
  | { readonly type: 'log'; readonly stream: 'stdout' | 'stderr'; readonly text: string };

/** The answer to an outgoing request; `code` is a wasi:http error-code case name. */
export type CallAnswer =
  | { readonly call: number; readonly ok: true; readonly status: number; readonly headers: string[]; readonly body: Uint8Array }
  | { readonly call: number; readonly ok: false; readonly code: string; readonly message: string };
