/**
 * The filters of one request and the one headers walk that serves both directions (Envoy's filter
 * manager iteration, reference §6.6): each filter of the direction's order in turn; Continue goes
 * on to the next, Pause (Stop) holds the walk at that filter until it calls proxy_continue_stream,
 * a failed callback gets the filter's failure policy. When every filter continued, the headers of
 * that direction are final and the flow moves on (upstream, or the client). Bodies go through
 * body-pipeline.ts, which asks the chain for its callbacks in the same way.
 *
 * The chain is what each filter's stream context talks to (through its FilterSlot): the header maps
 * of both directions and continue_stream are answered here, the rest goes to the flow.
 *
 * `epoch` changes whenever the flow moves to another response (or ends): a walk checks it after
 * each callback, because guest side effects (a local reply) run while the walk is on the stack.
 */
import { CALL_FAILED } from '../abi/context.js';
import { Direction, HeadersAction, StreamType, type Status } from '../abi/enums.js';
import { HeaderMap } from '../abi/header-map.js';
import type { StreamMap } from '../abi/map-types.js';
import type { LocalResponse } from '../abi/ports.js';
import type { BodyOwner } from './body-pipeline.js';
import { FilterCalls } from './filter-calls.js';
import type { FilterSlot, SlotOwner } from './filter-slot.js';
import { FlowDirection } from './flow-direction.js';

/** What the chain needs from the flow around it; the guest requests it does not answer itself go there too. */
export interface ChainOwner extends Pick<SlotOwner, 'property' | 'setProperty' | 'onClose' | 'onLocalReply'> {
  /** Every filter of `d` had its headers callback: the headers of `d` are final (`epoch`: the walk's). */
  headersFinal(d: FlowDirection, epoch: number): void;
  /**
   * The headers of `direction` went on (the request's to the upstream, or a reply took over; the
   * response's to the client): read-only from now on, and the request's walk cannot resume.
   */
  headersSent(direction: Direction): boolean;
  /** Failure policy for a filter whose callback failed on this stream: true to pass over it and go on. */
  failFilter(slot: FilterSlot): boolean;
  /** A walk stayed paused past the route's timeout: true when the flow answered for it (504). */
  pauseTimedOut(): boolean;
  /** The flow is over: nothing more is called. */
  over(): boolean;
}

export class FilterChain implements SlotOwner, BodyOwner {
  /** The filters installed on this request, in configured order. */
  readonly slots: FilterSlot[] = [];
  readonly calls = new FilterCalls();
  /** Indexed by Direction. */
  readonly directions = [new FlowDirection(Direction.REQUEST), new FlowDirection(Direction.RESPONSE)] as const;
  readonly request = this.directions[Direction.REQUEST];
  readonly response = this.directions[Direction.RESPONSE];
  epoch = 0;
  private pauseTimer: NodeJS.Timeout | null = null;

  constructor(private readonly owner: ChainOwner, private readonly pauseTimeoutMs: number) {}

  /** The headers callbacks of `d` from filter `from` on. */
  walkHeaders(d: FlowDirection, from: number): void {
    const epoch = this.beginWalk();
    const order = d.order;
    for (let i = from; i < order.length; i++) {
      const slot = order[i];
      if (!slot.active) continue;
      d.reached = i + 1;
      const action = this.calls.headers(slot, d.direction, d.headers!.count, d.eos);
      if (this.interrupted(epoch)) return;
      if (action === CALL_FAILED) {
        if (!this.owner.failFilter(slot)) return;
      } else if (action !== HeadersAction.CONTINUE && !slot.consumeEarlyContinue(d.direction)) {
        d.pausedAt = i;
        slot.hold();
        this.watchPause();
        return;
      }
    }
    d.pausedAt = -1;
    this.owner.headersFinal(d, epoch);
  }

  /** The flow is over: no pause can time out any more. */
  close(): void {
    this.clearPauseWatch();
  }

  // ---- guest requests (SlotOwner) -------------------------------------------------------------

  headerMap(map: StreamMap, write: boolean): HeaderMap | null {
    const d = this.directions[map.direction];
    if (map.trailers) {
      // Envoy's getMap: a write in the end-of-stream body callback creates the trailers.
      if (d.trailers === null && write && this.calls.eosBody === d.direction) d.trailers = new HeaderMap();
      return d.trailers;
    }
    return write && this.owner.headersSent(d.direction) ? null : d.headers;
  }

  requestRan(slot: FilterSlot): boolean {
    return slot.index < this.request.reached;
  }

  /**
   * proxy_continue_stream: early (before its callback returned Stop) when it comes from the running
   * filter; else it resumes the headers walk held at `slot` (the request's only while its headers
   * have not gone on), or what its body filter holds.
   */
  onContinue(slot: FilterSlot, type: StreamType): void {
    if (type > StreamType.HTTP_RESPONSE || this.owner.over()) return;
    const d = this.directions[type as Direction];
    if (this.calls.running === slot) {
      slot.continueEarly(d.direction);
      return;
    }
    this.clearPauseWatch();
    if (d.pausedOn(slot) && (d === this.response || !this.owner.headersSent(Direction.REQUEST))) {
      const next = d.pausedAt + 1;
      d.pausedAt = -1;
      this.walkHeaders(d, next);
    } else {
      d.pipeline?.resume(slot);
    }
  }

  onVmFailed(slot: FilterSlot): void {
    if (this.owner.over() || !slot.active) return;
    const waits = this.request.pausedOn(slot) || this.response.pausedOn(slot)
      || slot.bodyPaused(Direction.REQUEST) || slot.bodyPaused(Direction.RESPONSE);
    if (!waits || !this.owner.failFilter(slot)) return;
    // Fail-open: the stream goes on without the filter, as if it had continued.
    this.onContinue(slot, StreamType.HTTP_REQUEST);
    this.onContinue(slot, StreamType.HTTP_RESPONSE);
  }

  property(path: readonly string[]): Uint8Array | undefined {
    return this.owner.property(path);
  }

  setProperty(path: readonly string[], value: Uint8Array): Status {
    return this.owner.setProperty(path, value);
  }

  onClose(slot: FilterSlot, type: StreamType): void {
    this.owner.onClose(slot, type);
  }

  onLocalReply(slot: FilterSlot, reply: LocalResponse): void {
    this.owner.onLocalReply(slot, reply);
  }

  // ---- BodyOwner ----------------------------------------------------------------------------

  callBody(slot: FilterSlot, direction: Direction, size: number, eos: boolean): number {
    return this.calls.body(slot, direction, size, eos);
  }

  callTrailers(slot: FilterSlot, direction: Direction): number {
    return this.calls.trailers(slot, direction, this.directions[direction].trailers?.count ?? 0);
  }

  beginWalk(): number {
    this.calls.beginWalk();
    return this.epoch;
  }

  interrupted(epoch: number): boolean {
    return this.epoch !== epoch || this.owner.over();
  }

  failFilter(slot: FilterSlot): boolean {
    return this.owner.failFilter(slot);
  }

  hasTrailers(direction: Direction): boolean {
    return this.directions[direction].hasTrailers;
  }

  // ---- pause timeout ------------------------------------------------------------------------

  /**
   * A filter that paused headers and never continues must not hold the client forever (Envoy has
   * its stream idle timeout): after the route's timeout the flow answers 504 itself.
   */
  private watchPause(): void {
    if (this.pauseTimer !== null) return;
    this.pauseTimer = setTimeout(() => {
      this.pauseTimer = null;
      if (this.owner.over() || (this.request.pausedAt < 0 && this.response.pausedAt < 0)) return;
      // The answer's response walk starts afresh; the request's walk is given up.
      if (this.owner.pauseTimedOut()) this.request.pausedAt = -1;
    }, this.pauseTimeoutMs);
  }

  private clearPauseWatch(): void {
    if (this.pauseTimer === null) return;
    clearTimeout(this.pauseTimer);
    this.pauseTimer = null;
  }
}
