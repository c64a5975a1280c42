/**
 * One filter of one request: the StreamHost its stream context talks to. It owns the filter's
 * body buffers per direction and forwards every request of the guest (continue, close, local
 * reply, maps, properties) to the request flow, naming itself so the flow knows who asked.
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

export class FilterSlot implements StreamHost {
  stream: StreamContext | null = null;
  /** on_request_headers was delivered: the filter takes part in the response phase. */
  requestRan = false;
  /** Fail-open after a failure on this stream: the filter is passed over from now on. */
  skipped = false;
  /** Milliseconds spent in this filter's callbacks for this request. */
  timeMs = 0;
  /** Per direction (0 request, 1 response): buffered body, paused waiting for continue, eos held. */
  readonly bodies: [BodyBuffer | null, BodyBuffer | null] = [null, null];
  readonly bodyPaused = [false, false];
  readonly eosHeld = [false, false];
  /** The held end of stream comes with trailers (the next filters get their trailers callback). */
  readonly trailersHeld = [false, false];
  /** continue_stream arrived while this filter's own callback ran (before it returned Stop). */
  readonly earlyContinue = [false, false];
  /** Registered with the plugin as paused, so that a VM failure elsewhere can end the wait. */
  private held = false;

  constructor(readonly owner: SlotOwner, readonly plugin: PluginRuntime) {}

  get active(): boolean {
    return this.stream !== null && !this.skipped;
  }

  buffer(direction: number): BodyBuffer {
    return (this.bodies[direction] ??= new BodyBuffer());
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

  consumeEarlyContinue(direction: number): boolean {
    const early = this.earlyContinue[direction];
    this.earlyContinue[direction] = false;
    return early;
  }

  headerMap(type: number, write: boolean): HeaderMap | null {
    return this.owner.headerMap(type, write);
  }

  body(type: number): BodyBuffer | null {
    return type <= 1 ? this.bodies[type] : null;
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
