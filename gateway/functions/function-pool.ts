/**
 * The warm instances of one function: one worker thread per instance (function-worker.ts), each
 * holding a ready instance made off the request path. A request takes a ready instance, or waits
 * in a bounded queue until one is ready (that wait is the function's cold start, measured and
 * reported); the instance serving it is replaced behind it.
 *
 * A request over its time budget, a trap, an exit or a thread that dies costs that request alone
 * (504 or 503 by the caller): the thread is terminated, which stops even a guest that loops, and a
 * new one takes its place. A component that cannot make a single instance breaks the pool, and
 * `ready()` reports why.
 */
import { MessageChannel, type MessagePort, type Worker } from 'node:worker_threads';
import { GatewayError } from '../errors.js';
import type { LoadedComponent } from './component-loader.js';
import type { CallAnswer, FromWorker, WireRequest, WorkerSetup } from './messages.js';
import { startThread } from './thread.js';

export interface FunctionOptions {
  readonly instances: number;
  readonly reuse: 'snapshot' | 'keep' | 'fresh';
  readonly environment: Array<[string, string]>;
  readonly allowedHosts: string[];
  readonly bodyLimit: number;
  readonly timeoutMs: number;
  readonly maxQueue: number;
  readonly queueTimeoutMs: number;
  /** V8 heap of each thread (the bindings' JavaScript; the guest's linear memory is its own). */
  readonly heapMb: number;
}

/** Where a call's answer goes. Exactly one of end/fail ends it. */
export interface FunctionSink {
  head(status: number, headers: string[]): void;
  data(chunk: Uint8Array): void;
  end(trailers: string[] | null): void;
  fail(err: GatewayError): void;
}

/** An outgoing request of a function, made by the gateway (to a cluster). */
export type OutgoingFetch = (request: WireRequest, timeoutMs: number | null) => Promise<DistributiveOmit<CallAnswer, 'call'>>;
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** What the pool reports (metrics and log). */
export interface PoolEvents {
  instantiated(ms: number): void;
  /** A request waited `ms` for a ready instance (0 when one was ready). */
  waited(ms: number): void;
  guestLog(stream: 'stdout' | 'stderr', text: string): void;
  /** A call ended: answered, or failed with its code. */
  finished(code: GatewayError['code'] | null): void;
  threadFailed(message: string): void;
}

interface Call {
  readonly id: number;
  /** The status of the function's response head (0 before it). */
  status: number;
  readonly request: WireRequest;
  readonly sink: FunctionSink;
  readonly queuedAt: number;
  timer: NodeJS.Timeout | null;
  over: boolean;
}

const enum State { STARTING, READY, BUSY, DEAD }

class Slot {
  state = State.STARTING;
  call: Call | null = null;
  readonly signal = new SharedArrayBuffer(4);
  readonly word = new Int32Array(this.signal);
  readonly calls: MessagePort;
  readonly thread: Worker;

  constructor(setup: Omit<WorkerSetup, 'signal' | 'calls'>, heapMb: number) {
    const channel = new MessageChannel();
    this.calls = channel.port1;
    this.thread = startThread('function-worker', {
      workerData: { ...setup, signal: this.signal, calls: channel.port2 },
      transferList: [channel.port2],
      resourceLimits: { maxOldGenerationSizeMb: heapMb },
    });
    this.thread.unref();
  }

  answer(message: CallAnswer): void {
    this.calls.postMessage(message);
    Atomics.add(this.word, 0, 1);
    Atomics.notify(this.word, 0);
  }
}

export class FunctionPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Call[] = [];
  private nextId = 1;
  private closed = false;
  private everReady = false;
  private broken: GatewayError | null = null;
  private readonly waiters: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];
  /** Calls answered, and failed (an error, or a 5xx from the function): a canary is judged by them. */
  readonly counts = { ok: 0, failed: 0 };
  /** Calls taken and not yet ended (queued or running). */
  private active = 0;
  private retired = false;

  constructor(readonly name: string, readonly component: LoadedComponent, private readonly options: FunctionOptions,
    private readonly fetch: OutgoingFetch, private readonly events: PoolEvents) {
    for (let i = 0; i < options.instances; i++) this.slots.push(this.spawn());
  }

  /** Resolves once an instance is ready; rejects (GW_ERR_FUNCTION_INSTANCE) when none can be made. */
  ready(): Promise<void> {
    if (this.everReady) return Promise.resolve();
    if (this.broken !== null) return Promise.reject(this.broken);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** Instances ready now, and requests waiting for one. */
  get readyCount(): number {
    return this.slots.filter((s) => s.state === State.READY).length;
  }

  get queued(): number {
    return this.queue.length;
  }

  /** Runs `request` on an instance; returns a cancel for a client that went away. */
  call(request: WireRequest, sink: FunctionSink): () => void {
    const call: Call = { id: this.nextId++, status: 0, request, sink, queuedAt: performance.now(), timer: null, over: false };
    this.active++;
    if (this.closed || this.broken !== null) {
      this.end(call, this.broken ?? new GatewayError('GW_ERR_FUNCTION_OVERLOADED', `function ${this.name}: closed`));
      return () => {};
    }
    const slot = this.slots.find((s) => s.state === State.READY);
    if (slot !== undefined) {
      this.assign(slot, call);
    } else if (this.queue.length >= this.options.maxQueue) {
      this.end(call, new GatewayError('GW_ERR_FUNCTION_OVERLOADED', `function ${this.name}: all ${this.options.instances} instances busy and ${this.queue.length} requests waiting`));
      return () => {};
    } else {
      this.queue.push(call);
      call.timer = setTimeout(() => {
        this.queue.splice(this.queue.indexOf(call), 1);
        this.end(call, new GatewayError('GW_ERR_FUNCTION_OVERLOADED', `function ${this.name}: no instance was ready within ${this.options.queueTimeoutMs} ms`));
      }, this.options.queueTimeoutMs);
    }
    return () => {
      // The guest call cannot be interrupted cleanly: let it finish, its answer goes nowhere.
      const at = this.queue.indexOf(call);
      if (at >= 0) this.queue.splice(at, 1);
      this.settle(call);
    };
  }

  /** Instances serving a request now. */
  get busyCount(): number {
    return this.slots.filter((s) => s.state === State.BUSY).length;
  }

  /** No new calls come here any more: close once the last one ended. */
  retire(): void {
    this.retired = true;
    if (this.active === 0) void this.close();
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const call of this.queue.splice(0)) this.end(call, new GatewayError('GW_ERR_FUNCTION_OVERLOADED', `function ${this.name}: closed`));
    await Promise.all(this.slots.map((s) => {
      s.state = State.DEAD;
      s.calls.close();
      return s.thread.terminate();
    }));
  }

  private spawn(): Slot {
    const c = this.component;
    const slot = new Slot({
      name: this.name, glueUrl: c.glueUrl, modules: c.modules, imports: c.imports,
      environment: this.options.environment, allowedHosts: this.options.allowedHosts,
      bodyLimit: this.options.bodyLimit, reuse: this.options.reuse,
    }, this.options.heapMb);
    slot.thread.on('message', (m: FromWorker) => this.onMessage(slot, m));
    slot.thread.on('error', (err) => this.lost(slot, `thread error: ${err.message}`));
    slot.thread.on('exit', (code) => this.lost(slot, `thread exited (${code})`));
    return slot;
  }

  private onMessage(slot: Slot, m: FromWorker): void {
    if (slot.state === State.DEAD) return;
    const call = slot.call;
    switch (m.type) {
      case 'ready':
        if (!m.reused) this.events.instantiated(m.ms);
        slot.state = State.READY;
        slot.call = null;
        this.becameReady();
        this.next(slot);
        return;
      case 'broken':
        this.giveUp(slot, `function ${this.name}: an instance could not be made: ${m.message}`);
        return;
      case 'log':
        this.events.guestLog(m.stream, m.text);
        return;
      case 'fetch':
        void this.outgoing(slot, m.call, m.request, m.timeoutMs);
        return;
      case 'done':
        if (call !== null && call.id === m.id && !call.over) this.end(call, new GatewayError('GW_ERR_FUNCTION_FAILED', `function ${this.name}: returned without ending its response`));
        slot.call = null;
        slot.state = State.STARTING;
        return;
    }
    if (call === null || call.id !== m.id || call.over) return;
    switch (m.type) {
      case 'head':
        call.status = m.status;
        call.sink.head(m.status, m.headers);
        break;
      case 'data': call.sink.data(m.chunk); break;
      case 'end':
        if (m.chunk !== null) call.sink.data(m.chunk);
        this.end(call, null, m.trailers);
        break;
      case 'fail': this.end(call, new GatewayError('GW_ERR_FUNCTION_FAILED', `function ${this.name}: ${m.message}`)); break;
    }
  }

  private async outgoing(slot: Slot, id: number, request: WireRequest, timeoutMs: number | null): Promise<void> {
    let answer: CallAnswer;
    try {
      answer = { call: id, ...await this.fetch(request, timeoutMs) } as CallAnswer;
    } catch (err) {
      answer = { call: id, ok: false, code: 'internal-error', message: (err as Error).message };
    }
    if (slot.state !== State.DEAD) slot.answer(answer);
  }

  private assign(slot: Slot, call: Call): void {
    this.events.waited(performance.now() - call.queuedAt);
    slot.state = State.BUSY;
    slot.call = call;
    call.timer = setTimeout(() => {
      this.end(call, new GatewayError('GW_ERR_FUNCTION_TIMEOUT', `function ${this.name}: no complete response within ${this.options.timeoutMs} ms`));
      this.replace(slot, null);
    }, this.options.timeoutMs);
    slot.thread.postMessage({ type: 'request', id: call.id, request: call.request });
  }

  private next(slot: Slot): void {
    for (let call = this.queue.shift(); call !== undefined; call = this.queue.shift()) {
      if (call.timer !== null) clearTimeout(call.timer);
      if (call.over) continue;
      this.assign(slot, call);
      return;
    }
  }

  private end(call: Call, err: GatewayError | null, trailers: string[] | null = null): void {
    if (call.over) return;
    this.settle(call);
    this.events.finished(err === null ? null : err.code);
    if (err !== null || call.status >= 500) this.counts.failed++;
    else this.counts.ok++;
    if (err === null) call.sink.end(trailers);
    else call.sink.fail(err);
  }

  /** The call is over for the pool (answered, failed or abandoned by its client). */
  private settle(call: Call): void {
    if (call.timer !== null) clearTimeout(call.timer);
    call.timer = null;
    if (call.over) return;
    call.over = true;
    this.active--;
    if (this.retired && this.active === 0 && !this.closed) void this.close();
  }

  /** A thread that died or was stopped: its call fails, a new thread takes its place. */
  private lost(slot: Slot, why: string): void {
    if (slot.state === State.DEAD || this.closed) return;
    // A thread that cannot even start (bindings that do not load) would only fail again.
    if (slot.state === State.STARTING && slot.call === null) return this.giveUp(slot, `function ${this.name}: an instance could not be made: ${why}`);
    this.events.threadFailed(`function ${this.name}: ${why}`);
    this.replace(slot, new GatewayError('GW_ERR_FUNCTION_FAILED', `function ${this.name}: its instance was lost (${why})`));
  }

  private replace(slot: Slot, err: GatewayError | null): void {
    const call = slot.call;
    slot.state = State.DEAD;
    slot.call = null;
    if (call !== null && err !== null) this.end(call, err);
    slot.calls.close();
    void slot.thread.terminate();
    if (this.closed) return;
    const at = this.slots.indexOf(slot);
    if (at >= 0) this.slots[at] = this.spawn();
  }

  /** An instance could not be made: before any was, the component is broken; after, retry later. */
  private giveUp(slot: Slot, message: string): void {
    const err = new GatewayError('GW_ERR_FUNCTION_INSTANCE', message);
    if (!this.everReady) {
      this.broken = err;
      for (const w of this.waiters.splice(0)) w.reject(err);
      for (const call of this.queue.splice(0)) this.end(call, err);
      slot.state = State.DEAD;
      void slot.thread.terminate();
      return;
    }
    this.events.threadFailed(message);
    slot.state = State.DEAD;
    void slot.thread.terminate();
    setTimeout(() => { if (!this.closed) this.replace(slot, null); }, 1000).unref();
  }

  private becameReady(): void {
    if (this.everReady) return;
    this.everReady = true;
    for (const w of this.waiters.splice(0)) w.resolve();
  }
}
