/**
 * Ports: the interfaces through which the ABI host reaches the rest of the gateway. The layers
 * above (proxy, shared-state, admin) implement them; `abi/` never imports those layers. Every
 * port method is synchronous unless it takes a completion callback, because hostcalls are.
 */
import type { BodyBuffer } from './body-buffer.js';
import type { HeaderMap } from './header-map.js';
import type { BufferType, LogLevel, MetricType, Status, StreamType } from './enums.js';
import type { StreamMap } from './map-types.js';
import type { Pairs } from './pairs.js';

/** Who a guest log line or a host event is about. */
export interface PluginOrigin {
  readonly pluginName: string;
  readonly rootId: string;
  readonly vmId: string;
}

/** Where guest logs (`proxy_log`, WASI `fd_write`) and host diagnostics go. */
export interface AbiLogger {
  /** The level the guest sees through `proxy_get_log_level`; lower levels may be dropped. */
  level(): LogLevel;
  /** `message` is the guest's exact text. `origin` is null for start-up, before any plugin exists. */
  log(level: LogLevel, message: string, origin: PluginOrigin | null): void;
}

/** Timers and deferral; the default uses Node's event loop (`defaultScheduler`). */
export interface Scheduler {
  /** Calls `fn` every `periodMs` until cancelled; the first call one period from now. */
  every(periodMs: number, fn: () => void): { cancel(): void };
  /** Calls `fn` on a later turn of the event loop, never synchronously. */
  defer(fn: () => void): void;
}

/** A shared-data entry: value bytes and the CAS of the write that produced them (never 0). */
export interface SharedEntry {
  readonly value: Uint8Array;
  readonly cas: number;
}

/** Why a shared-data write was refused: key or value over its limit (abi/limits.ts), or over the quota. */
export type SharedDataRefusal = 'key_size' | 'value_size' | 'quota';

/**
 * The key-value store behind `proxy_get/set_shared_data`, scoped by vm_id. Synchronous: backends
 * answer from local memory and replicate in the background. A backend bounds the bytes each vm_id
 * holds and states in its file header what it does when a write does not fit.
 */
export interface SharedDataStore {
  /** The entry, or undefined. A read may count as a use (an LRU backend keeps the key longer). */
  get(vmId: string, key: string): SharedEntry | undefined;
  /**
   * cas 0 writes unconditionally; a non-zero cas must match the key's, else CAS_MISMATCH. An
   * empty value is the ABI's delete idiom (the key then reads as OK with an empty value, as in
   * Envoy). BAD_ARGUMENT: the entry alone is larger than the vm_id's quota and can never be stored.
   * The store keeps its own copy of `value`.
   */
  set(vmId: string, key: string, value: Uint8Array, cas: number): typeof Status.OK | typeof Status.CAS_MISMATCH | typeof Status.BAD_ARGUMENT;
  /** Told of a write the ABI host refused before it reached `set` (key or value over its limit), for the store's counters. */
  refused?(vmId: string, reason: SharedDataRefusal): void;
  /**
   * The last VM with this vm_id has gone: its data may be freed (cpp-host deletes a vm_id's data
   * with its last VM). A backend shared across nodes frees only its local copy.
   */
  release?(vmId: string): void;
}

/** Told when an item is enqueued on a queue it registered. May be called synchronously. */
export type QueueListener = (queueId: number) => void;

/** A registration on a shared queue: its id (non-zero), and how to stop listening. */
export interface QueueRegistration {
  readonly id: number;
  unsubscribe(): void;
}

/** Shared queues behind `proxy_*_shared_queue`, keyed by (vm_id, name); ids are global and non-zero. */
export interface SharedQueueStore {
  /**
   * Creates or re-opens the queue; re-registering rebinds the listener and keeps the items.
   * `unsubscribe` unbinds `listener` if it is still the one bound; the queue and its items stay
   * (another VM may enqueue, a later root may register again). The ABI host unsubscribes when the
   * registering root is deleted, so a queue never keeps a retired root, or its VM, alive.
   */
  register(vmId: string, name: string, listener: QueueListener): QueueRegistration;
  resolve(vmId: string, name: string): number | undefined;
  enqueue(queueId: number, data: Uint8Array): typeof Status.OK | typeof Status.NOT_FOUND;
  /** The front item, or EMPTY, or NOT_FOUND for an unknown queue. */
  dequeue(queueId: number): Uint8Array | typeof Status.EMPTY | typeof Status.NOT_FOUND;
}

/** One metric as the host stores it. Values are integers (u64 semantics clamped to doubles). */
export interface MetricCell {
  /** Counter or gauge: add `delta` (negative only for gauges). */
  add(delta: number): void;
  /** Gauge: set. */
  set(value: number): void;
  /** Histogram: record one sample. */
  observe(value: number): void;
  /** Counter or gauge: current value. */
  value(): number;
}

/** Where `proxy_define_metric` creates metrics. Defining a name twice returns the same cell. */
export interface MetricsSink {
  /**
   * The cell for `name`, or null to refuse a new one (a sink's own cap, such as a number of
   * metrics per plugin); the hostcall then answers INTERNAL_FAILURE and logs a warning.
   */
  define(type: MetricType, name: string, origin: PluginOrigin): MetricCell | null;
}

/** `proxy_http_call` as the guest asked for it. */
export interface HttpCallRequest {
  readonly cluster: string;
  /** Includes `:method`, `:path`, `:authority` (checked by the ABI host). */
  readonly headers: Pairs;
  readonly body: Uint8Array;
  readonly trailers: Pairs;
  /** 0 means no timeout; at most 2^31 - 1 (the hostcall refuses a negative count). */
  readonly timeoutMs: number;
  readonly origin: PluginOrigin;
}

/** The answer to an http call; `null` means the call failed (reset, refused, over limit). */
export interface HttpCallResponse {
  readonly headers: Pairs;
  readonly body: Uint8Array;
  readonly trailers: Pairs;
}

export interface GrpcCallRequest {
  readonly cluster: string;
  readonly service: string;
  readonly method: string;
  readonly initialMetadata: Pairs;
  /** Raw protobuf bytes without the gRPC length prefix. */
  readonly message: Uint8Array;
  readonly timeoutMs: number;
  readonly origin: PluginOrigin;
}

/** Everything a finished unary gRPC call produced. */
export interface GrpcCallResult {
  readonly initialMetadata?: Pairs;
  readonly message?: Uint8Array;
  readonly trailingMetadata?: Pairs;
  /** gRPC status code 0..16. */
  readonly status: number;
  readonly statusMessage: string;
}

/** The events of an open gRPC stream, in order; `close` is last. */
export interface GrpcStreamEvents {
  initialMetadata(md: Pairs): void;
  message(data: Uint8Array): void;
  trailingMetadata(md: Pairs): void;
  close(status: number, message: string): void;
}

export interface GrpcStreamHandle {
  send(message: Uint8Array, endStream: boolean): void;
  /** Half-close. */
  close(): void;
  cancel(): void;
}

/**
 * Outbound calls for filters. `httpCall` must call `done` asynchronously exactly once, and never
 * for a call it refused (a refused call takes no token, so the next call reuses it). Methods an
 * embedder leaves out make the matching hostcall return UNIMPLEMENTED.
 */
export interface Callouts {
  /** Returns OK, or BAD_ARGUMENT for an unknown cluster, or INTERNAL_FAILURE if it cannot dispatch. */
  httpCall?(req: HttpCallRequest, done: (res: HttpCallResponse | null) => void): Status;
  /** Returns a cancel handle, or a status (PARSE_FAILURE for an unknown cluster, as Envoy). */
  grpcCall?(req: GrpcCallRequest, done: (res: GrpcCallResult) => void): { cancel(): void } | Status;
  grpcStream?(req: Omit<GrpcCallRequest, 'message' | 'timeoutMs'>, events: GrpcStreamEvents): GrpcStreamHandle | Status;
}

/** What a foreign function sees of its caller. */
export interface ForeignCallContext {
  readonly origin: PluginOrigin;
  readonly contextId: number;
}

/** A host extension reachable through `proxy_call_foreign_function`. */
export type ForeignFunction = (
  args: Uint8Array,
  ctx: ForeignCallContext,
) => Uint8Array | { status: Status; result?: Uint8Array };

/** A response generated by the proxy instead of (or in place of) the upstream's. */
export interface LocalResponse {
  readonly status: number;
  readonly details: string;
  readonly body: Uint8Array;
  /** Extra headers, added (not replacing). */
  readonly headers: Pairs;
  /** -1 (GRPC_STATUS_NONE) for a plain HTTP reply, else 0..16. */
  readonly grpcStatus: number;
}

/**
 * The HTTP (or TCP) stream a stream context belongs to, implemented by the data plane. The ABI
 * host calls `continueStream`, `closeStream` and `sendLocalResponse` only after the guest call that
 * asked for them has returned, and `sendLocalResponse` at most once per stream.
 */
export interface StreamHost {
  /**
   * The stream's header map `map` (resolved from the guest's map type by map-types.ts: only ever
   * one of the stream's four maps) if it exists in the current phase, else null. With `write`,
   * null also when it is read-only now (e.g. request headers once forwarded, during `on_log`).
   */
  headerMap(map: StreamMap, write: boolean): HeaderMap | null;
  /** Buffer 0..3 (request/response body, downstream/upstream data) if available in the current callback, else null. */
  body(type: BufferType): BodyBuffer | null;
  /** A stream-scoped property (request.*, response.*, source.*, filter state…), serialised. */
  property(path: readonly string[]): Uint8Array | undefined;
  /** Stores filter state; NOT_FOUND when the stream has none, BAD_ARGUMENT if rejected. */
  setProperty(path: readonly string[], value: Uint8Array): Status;
  continueStream(type: StreamType): void;
  closeStream(type: StreamType): void;
  sendLocalResponse(response: LocalResponse): void;
}

/** VM-wide properties (node, xds.node, cluster info…), serialised per reference §5.11. */
export interface PropertySource {
  property(path: readonly string[], origin: PluginOrigin): Uint8Array | undefined;
}

/**
 * The ports that depend on a plugin's configuration rather than on its VM (`PluginSpec.ports`):
 * which clusters its callouts reach, which node its properties describe. A VM shared by two
 * configurations of a plugin (the old and the new generation during a reload, later a canary)
 * then serves each root, and every stream of that root, what its own configuration says. Each
 * one left out falls back to the VM's port of that name.
 */
export interface PluginPorts {
  readonly callouts?: Callouts;
  readonly properties?: PropertySource;
}
