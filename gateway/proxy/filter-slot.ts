/**
 * One filter of one request: the StreamHost its stream context talks to. It owns the filter's
 * body state per direction (once a body callback needs it) and forwards every request of the
 * guest (continue, close, local reply, maps, properties) to the request flow, naming itself so
 * the flow knows who asked.
 */
import { BodyBuffer } from '../abi/body-buffer.js';
import type { StreamContext } from '../abi/context.js';
import type { HeaderMap } from '../abi/header-map.js';
import type { StreamMap } from '../abi/map-types.js';
import type { LocalResponse, StreamHost } from '../abi/ports.js';
import { BufferType, type Direction, type Status, type StreamType } from '../abi/enums.js';
import type { PluginRuntime } from './plugin-runtime.js';

/** What a slot needs from the flow it belongs to. */
export interface SlotOwner {
  headerMap(map: StreamMap, write: boolean): HeaderMap | null;
  property(path: readonly string[]): Uint8Array | undefined;
  setProperty(path: readonly string[], value: Uint8Array): Status;
  /** Whether the request headers callback of `slot` ran: the filter takes part in the response phase. */
  requestRan(slot: FilterSlot): boolean;
  onContinue(slot: FilterSlot, type: StreamType): void;
  onClose(slot: FilterSlot, type: StreamType): void;
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

  /** `index`: the filter's place in the request's chain. */
  constructor(readonly owner: SlotOwner, readonly plugin: PluginRuntime, readonly index: number) {}

  get active(): boolean {
    return this.stream !== null && !this.skipped;
  }

  /** on_request_headers was delivered: the filter takes part in the response phase. */
  get requestRan(): boolean {
    return this.owner.requestRan(this);
  }

  /** The body state of `direction`, created on first use. */
  bodyState(direction: Direction): SlotBody {
    return direction === 0 ? (this.requestBody ??= new SlotBody()) : (this.responseBody ??= new SlotBody());
  }

  /** The body state of `direction` if a body callback ever ran there, else null. */
  existingBody(direction: Direction): SlotBody | null {
    return direction === 0 ? this.requestBody : this.responseBody;
  }

  /** The filter holds a body in `direction` until it calls proxy_continue_stream. */
  bodyPaused(direction: Direction): boolean {
    return this.existingBody(direction)?.paused ?? false;
  }

  /** The stream waits on this filter (Pause): a VM failure must not leave it waiting forever. */
  hold(): void {
    if (this.held) return;
    this.held = true;
    this.plugin.hold(this);
  }

  /** The stream is over. */
  release(): void {
    if (!this.held) return;
    this.held = false;
    this.plugin.release(this);
  }

  /** From the plugin, once its VM has failed. */
  vmFailed(): void {
    this.held = false;
    this.owner.onVmFailed(this);
  }

  /** continue_stream for `direction` arrived while this filter's own callback was running. */
  continueEarly(direction: Direction): void {
    this.earlyContinue |= 1 << direction;
  }

  consumeEarlyContinue(direction: Direction): boolean {
    const bit = 1 << direction;
    const early = (this.earlyContinue & bit) !== 0;
    this.earlyContinue &= ~bit;
    return early;
  }

  headerMap(map: StreamMap, write: boolean): HeaderMap | null {
    return this.owner.headerMap(map, write);
  }

  body(type: BufferType): BodyBuffer | null {
    // The HTTP bodies only: a stream here is never a TCP stream (downstream/upstream data).
    return type === BufferType.HTTP_REQUEST_BODY || type === BufferType.HTTP_RESPONSE_BODY ? (this.existingBody(type)?.buffer ?? null) : null;
  }

  property(path: readonly string[]): Uint8Array | undefined {
    return this.owner.property(path);
  }

  setProperty(path: readonly string[], value: Uint8Array): Status {
    return this.owner.setProperty(path, value);
  }

  continueStream(type: StreamType): void {
    this.owner.onContinue(this, type);
  }

  closeStream(type: StreamType): void {
    this.owner.onClose(this, type);
  }

  sendLocalResponse(reply: LocalResponse): void {
    this.owner.onLocalReply(this, reply);
  }
}
