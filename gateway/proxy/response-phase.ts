/**
 * The response phase of a flow: one response at a time (the upstream's answer, a filter's local
 * reply or the gateway's own) through the response filters (filter-chain.ts) to the client
 * (response-writer.ts). Body that arrives before the response headers walk is over waits here, with
 * the upstream held back; the end of the body, with the upstream's trailers, passes through the body
 * filters like the data before it (Envoy's encodeData / encodeTrailers).
 */
import { Direction } from '../abi/enums.js';
import { HeaderMap } from '../abi/header-map.js';
import { BodyPipeline } from './body-pipeline.js';
import type { FilterChain } from './filter-chain.js';
import type { FilterSlot } from './filter-slot.js';
import { objectToPairs } from './headers.js';
import type { ResponseWriter } from './response-writer.js';
import type { UpstreamHeaders } from './upstream-exchange.js';

const EMPTY_BODY = Buffer.alloc(0);

/** What the response phase needs from the flow. */
export interface ResponseOwner {
  /** A body filter held more of the response than the route's limit. */
  responseTooLarge(): void;
  /** Holds the upstream's answer back (`hold`), or lets it come again. */
  holdUpstream(hold: boolean): void;
}

export class ResponsePhase {
  /** Body that came before the headers walk was over, or a local reply's body. */
  private pending: Buffer[] = [];
  /** `pending` is the whole body (a local reply): its last chunk carries end of stream. */
  private whole = false;
  /** All of the body is here or on its way (the upstream's ended, or a local reply). */
  private ended = false;
  private upstreamTrailers: UpstreamHeaders | null = null;

  constructor(private readonly owner: ResponseOwner, private readonly chain: FilterChain, private readonly out: ResponseWriter,
    private readonly bodyLimit: number) {}

  /** Starts the response `headers` through `order` (already in response order); `body`: a local reply's. */
  begin(headers: HeaderMap, order: FilterSlot[], eos: boolean, body?: Uint8Array): void {
    this.chain.epoch++;
    this.chain.response.begin(headers, order, eos);
    // A local reply is whole from the start; an upstream response ends when undici says so.
    this.ended = eos || body !== undefined;
    this.pending = body !== undefined && body.length > 0 ? [Buffer.from(body)] : [];
    // Envoy encodes a local reply's body in one data frame with end_stream (one body callback).
    this.whole = this.pending.length > 0;
    this.upstreamTrailers = null;
    this.chain.walkHeaders(this.chain.response, 0);
  }

  /** The response headers are final: send the head (or start the body filters) and move the body. */
  headersFinal(epoch: number): void {
    const d = this.chain.response;
    if (!d.eos && BodyPipeline.wanted(d.order, d.direction)) d.pipeline = this.pipeline();
    // Headers that end the response (a gRPC trailers-only answer) go out as such.
    else this.out.writeHead(false, undefined, d.eos);
    const pending = this.pending;
    this.pending = [];
    for (let k = 0; k < pending.length; k++) {
      if (this.chain.epoch !== epoch) return;
      this.write(pending[k], this.whole && k === pending.length - 1);
    }
    if (this.chain.epoch !== epoch || this.whole) return;
    if (this.ended) this.end();
    else this.owner.holdUpstream(false);
  }

  /** A chunk of the upstream's body. */
  upstreamData(chunk: Buffer): void {
    if (!this.headersDone) {
      this.pending.push(chunk);
      this.owner.holdUpstream(true);
      return;
    }
    this.write(chunk, false);
  }

  /** The upstream's body ended, with `trailers`. */
  upstreamEnd(trailers: UpstreamHeaders): void {
    this.upstreamTrailers = trailers;
    this.ended = true;
    if (this.headersDone) this.end();
  }

  /** The headers walk is over: the head went out, or the body filters took over. */
  private get headersDone(): boolean {
    return this.chain.response.pipeline !== null || this.out.headSent;
  }

  private write(chunk: Buffer, eos: boolean): void {
    const pipeline = this.chain.response.pipeline;
    if (pipeline !== null) pipeline.feed(chunk, eos);
    else this.out.write(chunk, eos);
  }

  private end(): void {
    const trailers = objectToPairs(this.upstreamTrailers);
    this.upstreamTrailers = null;
    if (trailers.length === 0) {
      this.write(EMPTY_BODY, true);
      return;
    }
    // Trailers end the body in each filter in turn, after the data it held (Envoy's encodeTrailers).
    const d = this.chain.response;
    d.trailers = new HeaderMap(trailers);
    (d.pipeline ??= this.pipeline()).feed(EMPTY_BODY, true, 0, true);
  }

  private pipeline(): BodyPipeline {
    return new BodyPipeline(this.chain, this.chain.response.order, Direction.RESPONSE, this.bodyLimit,
      (data, eos) => this.out.write(data, eos), () => this.owner.responseTooLarge());
  }
}
