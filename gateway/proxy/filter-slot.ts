/**
 * One filter of one request: the StreamHost its stream context talks to. It owns the filter's
 * body state per direction (once a body callback needs it) and forwards every request of the
 * guest (continue, close, local reply, maps, properties) to the request flow, naming itself so
 * the flow knows who asked.
 */
import { BodyBuffer } from '../abi/body-buffer.js';
import type { StreamContext } from '../abi/context.js';
import type { HeaderMap } from '../abi/header-map.js';
import type { LocalResponse, StreamHost } from '../abi/ports.js';
import type { Status } from '../abi/enums.js';
import type { PluginRuntime } from './plugin-runtime.js';

/** What a slot needs from the flow it belongs to. */
export interface SlotOwner {
  headerMap(type: number, write: boolean): HeaderMap | null;
  property(path: readonly string[]): Uint8Array | undefined;
  setProperty(path: readonly string[], value: Uint8Array): Status;
  onContinue(slot: FilterSlot, type: number): void;
  onClose(slot: FilterSlot, type: number): void;
  onLocalReply(slot: FilterSlot, reply: LocalResponse): void;
  /** The filter's VM failed while this stream was paused on it: apply its failure policy. */
  onVmFailed(slot: FilterSlot): void;
}

/**
 * One direction of a filter's body: what it holds and why. Created on the first body callback in
 * that direction, so that header-only filters (most of them) allocate none.
 */
export class SlotBody {
  readonly buffer = new BodyBuffer();
  /** Paused, waiting for proxy_continue_stream. */
  paused = false;
  /** The end of stream arrived (or was reached) while paused: it moves on with the data. */
  eosHeld = false;
  /** The held end of stream comes with trailers (the next filters get their trailers callback). */
  trailersHeld = false;
}

export class FilterSlot implements StreamHost {
  stream: StreamContext | null = null;
  /** on_request_headers was delivered: the filter takes part in the response phase. */
  requestRan = false;
  /** Fail-open after a failure on this stream: the filter is passed over from now on. */
  skipped = false;
  /** Milliseconds spent in this filter's callbacks for this request. */
  timeMs = 0;
  private requestBody: SlotBody | null = null;
  private responseBody: SlotBody | null = null;
  /** Bit 1 << direction: continue_stream arrived while this filter's own callback ran (before it returned Stop). */
  private earlyContinue = 0;
  /** Registered with the plugin as paused, so that a VM failure elsewhere can end the wait. */
  private held = false;

  constructor(readonly owner: SlotOwner, readonly plugin: PluginRuntime) {}

  get active(): boolean {
    return this.stream !== null && !this.skipped;
  }

  /** The body state of `direction` (0 request, 1 response), created on first use. */
  bodyState(direction: number): SlotBody {
    return direction === 0 ? (this.requestBody ??= new SlotBody()) : (this.responseBody ??= new SlotBody());
  }

  /** The body state of `direction` if a body callback ever ran there, else null. */
  existingBody(direction: number): SlotBody | null {
    return direction === 0 ? this.requestBody : this.responseBody;
  }

  /** The filter holds a body in `direction` until it calls proxy_continue_stream. */
  bodyPaused(direction: number): boolean {
    return this.existingBody(direction)?.paused ?? false;
  }

  /** The stream waits on this filter (Pause): a VM failure must not leave it waiting forever. */
  hold(): void {
    if (this.held) return;
    this.held = true;
    this.plugin.paused.add(this);
  }

  /** The stream is over. */
  release(): void {
    if (!this.held) return;
    this.held = false;
    this.plugin.paused.delete(this);
  }

  /** From the plugin, once its VM has failed. */
  vmFailed(): void {
    this.held = false;
    this.owner.onVmFailed(this);
  }

  /** continue_stream for `direction` arrived while this filter's own callback was running. */
  continueEarly(direction: number): void {
    this.earlyContinue |= 1 << direction;
  }

  consumeEarlyContinue(direction: number): boolean {
    const bit = 1 << direction;
    const early = (this.earlyContinue & bit) !== 0;
    this.earlyContinue &= ~bit;
    return early;
  }

  headerMap(type: number, write: boolean): HeaderMap | null {
    return this.owner.headerMap(type, write);
  }

  body(type: number): BodyBuffer | null {
    return type <= 1 ? (this.existingBody(type)?.buffer ?? null) : null;
  }

  property(path: readonly string[]): Uint8Array | undefined {
    return this.owner.property(path);
  }

  setProperty(path: readonly string[], value: Uint8Array): Status {
    return this.owner.setProperty(path, value);
  }

  continueStream(type: number): void {
    this.owner.onContinue(this, type);
  }

  closeStream(type: number): void {
    this.owner.onClose(this, type);
  }

  sendLocalResponse(reply: LocalResponse): void {
    this.owner.onLocalReply(this, reply);
  }
}
