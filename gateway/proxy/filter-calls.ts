/**
 * Calling one request's filter callbacks: which filter is running, and how long each one took
 * (edge_gateway_filter_seconds). Within a walk along the chain the clock is read once per
 * callback boundary: the end of one callback is the start of the next.
 */
import { CALL_FAILED, type StreamContext } from '../abi/context.js';
import { Direction } from '../abi/enums.js';
import type { FilterSlot } from './filter-slot.js';

export class FilterCalls {
  /** The filter whose callback is running now (a continue_stream from it is an early continue). */
  running: FilterSlot | null = null;
  /**
   * The direction of the end-of-stream body callback running now, or -1.
   * Envoy creates the trailer map when a filter writes to it then (getMap → addDecodedTrailers /
   * addEncodedTrailers), so a filter can add trailers the peer never sent.
   */
  eosBody: Direction | -1 = -1;
  /** The end of the last callback of the current walk; -1 before its first. */
  private lap = -1;
  /** Milliseconds charged to the slots so far: the part of a callback's time that nested ones took. */
  private total = 0;

  /**
   * A walk along the chain begins: its first callback reads the clock at its start (a mark left by
   * an earlier walk would charge the time in between to that filter). NB: a walk nested in a
   * callback (a local reply) moves the mark on; the callback around it keeps its own start and
   * still counts its whole time.
   */
  beginWalk(): void {
    this.lap = -1;
  }

  headers(slot: FilterSlot, direction: Direction, count: number, eos: boolean): number {
    const t0 = this.enter(slot);
    const before = this.total;
    const stream = slot.stream!;
    const replied = stream.localReplySent;
    const requests = stream.localReplyRequests;
    const action = direction === Direction.REQUEST ? stream.onRequestHeaders(count, eos) : stream.onResponseHeaders(count, eos);
    this.leave(slot, t0, before);
    return ignoringSecondReply(stream, replied, requests, action);
  }

  body(slot: FilterSlot, direction: Direction, size: number, eos: boolean): number {
    const t0 = this.enter(slot);
    const before = this.total;
    const stream = slot.stream!;
    const replied = stream.localReplySent;
    const requests = stream.localReplyRequests;
    if (eos) this.eosBody = direction;
    const action = direction === Direction.REQUEST ? stream.onRequestBody(size, eos) : stream.onResponseBody(size, eos);
    this.eosBody = -1;
    this.leave(slot, t0, before);
    return ignoringSecondReply(stream, replied, requests, action);
  }

  trailers(slot: FilterSlot, direction: Direction, count: number): number {
    const t0 = this.enter(slot);
    const before = this.total;
    const stream = slot.stream!;
    const replied = stream.localReplySent;
    const requests = stream.localReplyRequests;
    const action = direction === Direction.REQUEST ? stream.onRequestTrailers(count) : stream.onResponseTrailers(count);
    this.leave(slot, t0, before);
    return ignoringSecondReply(stream, replied, requests, action);
  }

  /** on_log for every filter, then on_done/on_delete for every one: Envoy logs all before it destroys any. */
  finish(slots: readonly FilterSlot[]): void {
    this.beginWalk();
    for (const slot of slots) {
      const t0 = this.start();
      const before = this.total;
      slot.stream?.log();
      this.charge(slot, t0, before);
    }
    for (const slot of slots) {
      const t0 = this.start();
      const before = this.total;
      slot.release();
      slot.stream?.destroy();
      this.charge(slot, t0, before);
    }
    // After every stream of the request has ended, and outside the filter time: a VM may be recycled.
    for (const slot of slots) if (slot.stream !== null) slot.plugin.streamEnded(slot.stream);
  }

  private enter(slot: FilterSlot): number {
    this.running = slot;
    return this.start();
  }

  private leave(slot: FilterSlot, t0: number, before: number): void {
    this.running = null;
    this.charge(slot, t0, before);
  }

  /** The start of a callback: the end of the previous one in this walk, or now for the first. */
  private start(): number {
    return this.lap >= 0 ? this.lap : performance.now();
  }

  /**
   * The callback of `slot` that started at `t0`, when `total` was `before`, ended: its time, and
   * the start of the next. What callbacks nested in it were charged (a local reply walks the
   * response callbacks inside the callback that sent it) is theirs, not counted twice.
   */
  private charge(slot: FilterSlot, t0: number, before: number): void {
    const spent = (this.lap = performance.now()) - t0 - (this.total - before);
    slot.timeMs += spent;
    this.total += spent;
  }
}

/**
 * A second local reply from a stream is ignored (only the first is sent), and so is the Stop the
 * ABI forces for it: nothing would ever resume the stream and the client would hang. Continue is 0
 * for headers, bodies and trailers alike. A first local reply the host refused (a status or header it
 * cannot send: requested, never sent) fails the callback, so the failure policy answers.
 */
function ignoringSecondReply(stream: StreamContext, replied: boolean, requests: number, action: number): number {
  if (stream.localReplyRequests === requests || action === CALL_FAILED) return action;
  if (!stream.localReplySent) return CALL_FAILED;
  return replied ? 0 : action;
}
