/**
 * A body passing through the filters of one direction with Envoy's semantics (reference §6.6):
 * each chunk goes to each filter in turn; Continue passes what the filter holds (with its edits)
 * to the next; Pause (StopIterationAndBuffer) keeps it and calls the filter again with the
 * cumulative size when more arrives; at end of stream, or with StopIterationNoBuffer, the filter
 * holds the data until it calls proxy_continue_stream. Over the route's limit, `overLimit` runs.
 * When trailers end the stream, each filter gets its trailers callback instead of a last body
 * callback with end_of_stream (Envoy), and what it held moves on when that callback continues.
 * A filter may add trailers in its end-of-stream body callback when the peer sent none (Envoy's
 * addDecodedTrailers/addEncodedTrailers): the filters after it then get the data without
 * end_of_stream and their trailers callback, as Envoy's filter manager does.
 */
import { BodyAction, Direction } from '../abi/enums.js';
import { CALL_FAILED } from '../abi/context.js';
import type { BodyBuffer } from '../abi/body-buffer.js';
import type { FilterSlot } from './filter-slot.js';

export interface BodyOwner {
  /** Calls the body callback of `slot` for `direction`; returns its action or CALL_FAILED. */
  callBody(slot: FilterSlot, direction: Direction, size: number, eos: boolean): number;
  /** Calls the trailers callback of `slot` for `direction`; returns its action (0 Continue) or CALL_FAILED. */
  callTrailers(slot: FilterSlot, direction: Direction): number;
  /** After a callback: whether the flow moved on (a local reply, a reset) and this body must stop. */
  interrupted(epoch: number): boolean;
  /** A walk along the filters begins: returns the epoch to check with interrupted() (and marks the clock). */
  beginWalk(): number;
  /** Fail policy for a filter that trapped: true to pass over it and go on. */
  failFilter(slot: FilterSlot): boolean;
  /** Whether the stream of `direction` now ends with trailers (a filter may just have added them). */
  hasTrailers(direction: Direction): boolean;
}

export class BodyPipeline {
  /** Some filter changed the body: a length announced before it is no longer true. */
  edited = false;

  constructor(
    private readonly owner: BodyOwner,
    private readonly slots: readonly FilterSlot[],
    private readonly direction: Direction,
    private readonly limit: number,
    private readonly emit: (data: Buffer, eos: boolean) => void,
    private readonly overLimit: () => void,
  ) {}

  /** Feeds a chunk (possibly empty, for a bare end of stream) from filter `from` on; `trailers`: they end it. */
  feed(chunk: Buffer, eos: boolean, from = 0, trailers = false): void {
    const dir = this.direction;
    const epoch = this.owner.beginWalk();
    let data = chunk;
    for (let i = from; i < this.slots.length; i++) {
      const slot = this.slots[i];
      if (!slot.active) continue;
      const held = slot.bodyState(dir);
      const buf = held.buffer;
      buf.append(data);
      if (held.paused) {
        held.eosHeld ||= eos;
        held.trailersHeld ||= trailers;
        if (buf.length > this.limit) this.overLimit();
        return;
      }
      const ending = eos && trailers;
      const action = ending ? this.owner.callTrailers(slot, dir) : this.owner.callBody(slot, dir, buf.length, eos);
      if (this.owner.interrupted(epoch)) return;
      if (action === CALL_FAILED) {
        if (!this.owner.failFilter(slot)) return;
      } else if (action !== BodyAction.CONTINUE && !slot.consumeEarlyContinue(dir)) {
        if (ending) {
          // StopIteration on trailers: hold the data and the trailers until continue_stream.
          held.paused = true;
          held.eosHeld = true;
          held.trailersHeld = true;
          slot.hold();
          return;
        }
        if (buf.length > this.limit) {
          this.overLimit();
          return;
        }
        // Buffering before the end waits for more data; anything else waits for continue_stream.
        if (eos || action === BodyAction.STOP_NO_BUFFER) {
          held.paused = true;
          held.eosHeld = eos;
          slot.hold();
        }
        return;
      }
      data = this.take(buf);
      if (eos && !trailers && this.owner.hasTrailers(dir)) {
        // This filter added trailers at the end of the stream: the rest see data, then trailers.
        if (data.length > 0) this.feed(data, false, i + 1);
        if (!this.owner.interrupted(epoch)) this.feed(Buffer.alloc(0), true, i + 1, true);
        return;
      }
    }
    this.emit(data, eos);
  }

  /** What a filter passes on; remembers whether any filter edited the body on the way. */
  private take(buf: BodyBuffer): Buffer {
    if (buf.edited) {
      this.edited = true;
      buf.edited = false;
    }
    return buf.take();
  }

  /** proxy_continue_stream from `slot`: pass on what it holds. */
  resume(slot: FilterSlot): void {
    const dir = this.direction;
    const index = this.slots.indexOf(slot);
    if (index < 0) return;
    const held = slot.existingBody(dir);
    if (held === null || (!held.paused && held.buffer.length === 0)) return;
    const eos = held.eosHeld;
    const trailers = held.trailersHeld;
    held.paused = false;
    held.eosHeld = false;
    held.trailersHeld = false;
    this.feed(this.take(held.buffer), eos, index + 1, trailers);
  }

  /**
   * True when some filter of this direction exports a body callback; for the request, or a trailers
   * callback: the client's trailers reach the filters only through here (request-trailers.ts). The
   * response needs no such rule: upstream trailers always end the body through the filters.
   */
  static wanted(slots: readonly FilterSlot[], direction: Direction): boolean {
    return slots.some((s) => s.active && (direction === Direction.REQUEST
      ? s.stream!.vm.callbacks.onRequestBody !== null || s.stream!.vm.callbacks.onRequestTrailers !== null
      : s.stream!.vm.callbacks.onResponseBody !== null));
  }
}
