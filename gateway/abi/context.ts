/**
 * Root (plugin) contexts and stream contexts, and the callbacks the data plane drives through them.
 * Context ids come from one counter per VM starting at 1 (id 0 is the VM context used for start-up
 * and allocation), as in cpp-host, so a guest never sees an id twice.
 */
import { BodyAction, HeadersAction, StopAction } from './enums.js';
import type { GuestFn } from './callbacks.js';
import type { Callouts, HttpCallResponse, PluginOrigin, PluginPorts, PropertySource, StreamHost } from './ports.js';
import type { Pairs } from './pairs.js';
import type { WasmVm } from './vm.js';

/** Returned by a callback wrapper when the guest trapped; the VM is failed from then on. */
export const CALL_FAILED = -1;

/** What a plugin is: the unit that owns one root context. */
export interface PluginSpec {
  /** Operator-facing name, used in logs and errors. */
  readonly name: string;
  /** root_id handed to the SDK (`plugin_root_id`); selects the root-context factory. */
  readonly rootId: string;
  /** Plugin configuration bytes (buffer 7, `on_configure`). */
  readonly configuration: Uint8Array;
  /** Ports of the plugin's own configuration, used before the VM's (ports.ts PluginPorts). */
  readonly ports?: PluginPorts;
}

/** gRPC results readable (maps 4/5, buffer 5) while one is being delivered to a root. */
export interface GrpcDelivery {
  initialMetadata: Pairs | null;
  message: Uint8Array | null;
  trailingMetadata: Pairs | null;
}

export class RootContext implements PluginOrigin {
  readonly kind = 'root';
  readonly root: RootContext = this;
  readonly pluginName: string;
  readonly rootId: string;
  readonly vmId: string;
  /** Where this root's callouts (and its streams') go: the plugin's port, else the VM's. */
  readonly callouts: Callouts | undefined;
  /** The VM-wide properties this root and its streams read: the plugin's port, else the VM's. */
  readonly properties: PropertySource | undefined;
  alive = false;
  /** on_done returned false: waiting for proxy_done(). */
  pendingDone = false;
  /** true while on_configure / validate_configuration runs (buffer 7, 0.1.0 get_configuration). */
  configuring = false;
  tick: { cancel(): void } | null = null;
  /**
   * The shared queues the root registered, by id, each with its unsubscribe (run when the root is
   * deleted). By id: a guest registering the same queue on every tick holds one entry.
   */
  readonly queues = new Map<number, () => void>();
  /** The http-call answer being delivered right now (maps 6/7, buffer 4), else null. */
  callout: HttpCallResponse | null = null;
  grpc: GrpcDelivery | null = null;
  /** `proxy_get_status`: last callout status. */
  statusCode = 0;
  statusMessage = '';

  constructor(readonly id: number, readonly vm: WasmVm, readonly plugin: PluginSpec) {
    this.pluginName = plugin.name;
    this.rootId = plugin.rootId;
    this.vmId = vm.vmId;
    this.callouts = plugin.ports?.callouts ?? vm.ports.callouts;
    this.properties = plugin.ports?.properties ?? vm.ports.properties;
  }

  /** Ends the root: on_done, then on_delete now or once the guest calls proxy_done(). */
  shutdown(): void {
    this.vm.shutdownRoot(this);
  }
}

export class StreamContext {
  readonly kind = 'stream';
  /** on_context_create was delivered (lazily, before the first callback). */
  created = false;
  alive = true;
  /**
   * Local replies the guest asked for on this stream (each call counts, even the ignored second
   * one). A callback during which it grew is forced to Stop whatever it returned (§6.7). A count,
   * not a flag, so that callbacks run while the reply is applied cannot clear it.
   */
  localReplyRequests = 0;
  localReplySent = false;
  /** on_log was delivered (or skipped for good). */
  private logged = false;
  /** true while on_log runs: Envoy's access-log phase, where a missing map is NOT_FOUND (§3.6). */
  inLog = false;
  /** Its index among its VM's live streams (live-contexts.ts); -1 once gone. */
  place = -1;

  constructor(readonly id: number, readonly root: RootContext, readonly host: StreamHost) {}

  get vm(): WasmVm {
    return this.root.vm;
  }

  private ensureCreated(): boolean {
    if (this.created) return true;
    this.created = true;
    const fn = this.vm.callbacks.onContextCreate;
    return fn === null || this.vm.call(this, fn, this.id, this.root.id) !== CALL_FAILED;
  }

  private invoke(fn: GuestFn | null, a: number, b: number): number {
    if (!this.alive || fn === null) return 0;
    if (!this.ensureCreated()) return CALL_FAILED;
    return this.vm.call(this, fn, this.id, a, b);
  }

  private headers(fn: GuestFn | null, n: number, eos: boolean): number {
    const replies = this.localReplyRequests;
    const r = this.invoke(fn, n, eos ? 1 : 0);
    if (r === CALL_FAILED) return r;
    if (this.localReplyRequests !== replies) return HeadersAction.STOP_ALL;
    // cpp-host: 0 and 2 (ContinueAndEndStream) continue; 1, 3, 4 and above stop everything.
    return r === 0 || r === 2 ? HeadersAction.CONTINUE : HeadersAction.STOP_ALL;
  }

  private body(fn: GuestFn | null, size: number, eos: boolean): number {
    const replies = this.localReplyRequests;
    const r = this.invoke(fn, size, eos ? 1 : 0);
    if (r === CALL_FAILED) return r;
    if (this.localReplyRequests !== replies) return BodyAction.STOP_NO_BUFFER;
    return r <= 2 && r >= 0 ? r : BodyAction.STOP_NO_BUFFER;
  }

  private stop(fn: GuestFn | null, n: number, b = 0): number {
    const replies = this.localReplyRequests;
    const r = this.invoke(fn, n, b);
    if (r === CALL_FAILED) return r;
    return this.localReplyRequests !== replies || r !== 0 ? StopAction.STOP : StopAction.CONTINUE;
  }

  onRequestHeaders(numHeaders: number, endOfStream: boolean): number {
    return this.headers(this.vm.callbacks.onRequestHeaders, numHeaders, endOfStream);
  }
  onRequestBody(bodySize: number, endOfStream: boolean): number {
    return this.body(this.vm.callbacks.onRequestBody, bodySize, endOfStream);
  }
  onRequestTrailers(numTrailers: number): number {
    return this.stop(this.vm.callbacks.onRequestTrailers, numTrailers);
  }
  onResponseHeaders(numHeaders: number, endOfStream: boolean): number {
    return this.headers(this.vm.callbacks.onResponseHeaders, numHeaders, endOfStream);
  }
  onResponseBody(bodySize: number, endOfStream: boolean): number {
    return this.body(this.vm.callbacks.onResponseBody, bodySize, endOfStream);
  }
  onResponseTrailers(numTrailers: number): number {
    return this.stop(this.vm.callbacks.onResponseTrailers, numTrailers);
  }
  onNewConnection(): number {
    return this.stop(this.vm.callbacks.onNewConnection, 0);
  }
  onDownstreamData(size: number, endOfStream: boolean): number {
    return this.stop(this.vm.callbacks.onDownstreamData, size, endOfStream ? 1 : 0);
  }
  onUpstreamData(size: number, endOfStream: boolean): number {
    return this.stop(this.vm.callbacks.onUpstreamData, size, endOfStream ? 1 : 0);
  }
  onDownstreamConnectionClose(peer: number): void {
    this.invoke(this.vm.callbacks.onDownstreamConnectionClose, peer, 0);
  }
  onUpstreamConnectionClose(peer: number): void {
    this.invoke(this.vm.callbacks.onUpstreamConnectionClose, peer, 0);
  }

  /**
   * Ends the stream as Envoy's HTTP filter does (reference §1.4): on_log → on_done (result
   * ignored) → on_delete. The context is created first if no callback reached it yet, so on_log
   * runs for every completed request. Safe to call twice and on a failed VM.
   */
  finish(): void {
    this.log();
    this.destroy();
  }

  /**
   * The access-log phase alone: on_log (creating the context first if needed). The data plane
   * runs it for every filter of a stream before destroying any, as Envoy's filter manager logs
   * all filters before it destroys them.
   */
  log(): void {
    if (!this.alive || this.logged) return;
    this.logged = true;
    const vm = this.vm;
    if (vm.failed || !this.ensureCreated()) return;
    const onLog = vm.callbacks.onLog;
    if (onLog === null) return;
    this.inLog = true;
    vm.call(this, onLog, this.id);
    this.inLog = false;
  }

  /** on_done (result ignored for streams) → on_delete, then the id is forgotten. */
  destroy(): void {
    if (!this.alive) return;
    const vm = this.vm;
    if (!vm.failed && this.created) {
      const { onDone, onDelete } = vm.callbacks;
      if (onDone !== null) vm.call(this, onDone, this.id);
      if (onDelete !== null) vm.call(this, onDelete, this.id);
    }
    this.alive = false;
    vm.forget(this);
  }
}

export type Context = RootContext | StreamContext;
