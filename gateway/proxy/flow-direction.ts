/**
 * One direction of a request flow as its filter walks see it: the headers and trailers going that
 * way, the filters in the order they are called, where a Pause holds the headers walk, and the body
 * pipeline once body filters run. The flow (flow.ts) runs one headers walk over either direction.
 *
 * Request: the configured filter order, the client's headers and trailers. Response: reverse
 * order, only the filters whose request phase ran (Envoy's encoder chain); the upstream's answer
 * or a local reply, each starting the direction afresh.
 */
import type { Direction } from '../abi/enums.js';
import type { HeaderMap } from '../abi/header-map.js';
import type { BodyPipeline } from './body-pipeline.js';
import type { FilterSlot } from './filter-slot.js';

export class FlowDirection {
  headers: HeaderMap | null = null;
  /** The peer's trailers, or those a filter added at the end of the body; null while there are none. */
  trailers: HeaderMap | null = null;
  order: readonly FilterSlot[] = [];
  /** The headers end the stream: no body follows (end_of_stream of the headers callbacks). */
  eos = false;
  /** Index in `order` of the filter whose headers callback paused the walk, or -1. */
  pausedAt = -1;
  /** The headers walk has called order[0 .. reached - 1] (or passed over them, skipped). */
  reached = 0;
  /** The body through the filters with a body callback; null while it goes without (or none runs). */
  pipeline: BodyPipeline | null = null;

  constructor(readonly direction: Direction) {}

  /** New headers through `order`: what an earlier walk of this direction left is gone. */
  begin(headers: HeaderMap, order: readonly FilterSlot[], eos: boolean): void {
    this.headers = headers;
    this.trailers = null;
    this.order = order;
    this.eos = eos;
    this.pausedAt = -1;
    this.reached = 0;
    this.pipeline = null;
  }

  /** The headers walk waits for `slot` to continue. */
  pausedOn(slot: FilterSlot): boolean {
    return this.pausedAt >= 0 && this.order[this.pausedAt] === slot;
  }

  /** Whether this direction's stream ends with trailers now (the peer's, or a filter's). */
  get hasTrailers(): boolean {
    return this.trailers !== null && this.trailers.count > 0;
  }

  /**
   * The filters of this (request) direction up to `last` whose headers callback ran, in response
   * order; `activeOnly` leaves out those skipped since (fail-open).
   */
  ranInResponseOrder(last: number, activeOnly: boolean): FilterSlot[] {
    const order: FilterSlot[] = [];
    for (let i = Math.min(last, this.reached - 1); i >= 0; i--) {
      const slot = this.order[i];
      if (!activeOnly || slot.active) order.push(slot);
    }
    return order;
  }
}
