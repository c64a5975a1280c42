/**
 * One request's exchange with an edge function (gateway/functions/), in place of an upstream: the
 * request as the filters left it, its body read whole (from the client, or from the request body
 * filters) up to the route's body limit, then one call on a warm instance. The function's answer
 * comes back through the same owner callbacks as an upstream's, so the response phase of the
 * filters runs on it unchanged; a function that fails, overruns its time or finds no instance is
 * an upstream failure with its GW_ERR_FUNCTION_* code.
 */
import type { IncomingMessage } from 'node:http';
import { GatewayError } from '../errors.js';
import type { FunctionSink } from '../functions/function-pool.js';
import type { WireRequest } from '../functions/messages.js';
import type { CanaryRuleConfig } from '../config/schema.js';
import { CanarySplit } from './canary-split.js';
import type { FlowDirection } from './flow-direction.js';
import { withoutPseudo } from './headers.js';
import type { ExchangeOwner, UpstreamHeaders } from './upstream-exchange.js';

/** A function as a route reaches it (functions/function-host.ts's LiveFunction). */
export interface FunctionTarget {
  /** The canary's share and rules, or null when the function has no canary. */
  readonly canaryRule: Pick<CanaryRuleConfig, 'percent' | 'match' | 'sticky'> | null;
  /** The canary's share now (the admin API may have moved it from the rule's). */
  readonly canaryPercent: number;
  call(request: WireRequest, sink: FunctionSink, toCanary: boolean): () => void;
}

/** One split per canary rule (a reload or swap brings a new rule object, and a new split). */
const splits = new WeakMap<object, CanarySplit>();

function toCanary(target: FunctionTarget, req: IncomingMessage): boolean {
  const rule = target.canaryRule;
  if (rule === null) return false;
  let split = splits.get(rule);
  if (split === undefined) splits.set(rule, split = new CanarySplit(rule as CanaryRuleConfig));
  split.percent = target.canaryPercent;
  return split.takes(req);
}

/** The flow's side of a body that went over the route's limit. */
export interface FunctionOwner extends ExchangeOwner {
  requestTooLarge(): void;
}

function headersObject(flat: readonly string[]): UpstreamHeaders {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const name = flat[i]!;
    const have = out[name];
    out[name] = have === undefined ? flat[i + 1]! : Array.isArray(have) ? [...have, flat[i + 1]!] : [have, flat[i + 1]!];
  }
  return out;
}

export class FunctionExchange {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private cancel: (() => void) | null = null;
  private over = false;
  /** Whether the function's canary answers this request (decided when the request arrives). */
  private readonly canary: boolean;
  bytesIn = 0;

  constructor(private readonly owner: FunctionOwner, private readonly req: IncomingMessage, private readonly request: FlowDirection,
    private readonly target: FunctionTarget, private readonly bodyLimit: number) {
    this.canary = toCanary(target, req);
  }

  /** Starts the exchange with the route's function; one that does not run (a reload removed it) fails it at once. */
  static open(owner: FunctionOwner, req: IncomingMessage, request: FlowDirection, target: FunctionTarget | undefined,
    route: { readonly fn: string | null; readonly bodyLimit: number }): FunctionExchange | null {
    if (target === undefined) {
      owner.upstreamFailed(new GatewayError('GW_ERR_FUNCTION_FAILED', `no function named ${route.fn} is running`));
      return null;
    }
    const exchange = new FunctionExchange(owner, req, request, target, route.bodyLimit);
    exchange.send();
    return exchange;
  }

  /** Starts reading the body; the call goes out when it is whole. */
  send(): void {
    const d = this.request;
    if (d.eos) return this.call();
    if (d.pipeline !== null) {
      // The request body filters feed write(); the client's bytes go to them.
      this.req.on('data', (chunk: Buffer) => { this.bytesIn += chunk.length; if (!this.over) d.pipeline?.feed(chunk, false); });
      this.req.on('end', () => { if (!this.over) d.pipeline?.feed(Buffer.alloc(0), true); });
      return;
    }
    this.req.on('data', (chunk: Buffer) => { this.bytesIn += chunk.length; this.write(chunk, false); });
    this.req.on('end', () => this.write(Buffer.alloc(0), true));
  }

  write(data: Buffer, eos: boolean): void {
    if (this.over) return;
    this.size += data.length;
    if (this.size > this.bodyLimit) {
      this.over = true;
      this.owner.requestTooLarge();
      return;
    }
    if (data.length > 0) this.chunks.push(data);
    if (eos) this.call();
  }

  private call(): void {
    const h = this.request.headers!;
    const wire: WireRequest = {
      method: h.get(':method') ?? 'GET',
      scheme: h.get(':scheme') ?? 'http',
      authority: h.get(':authority') ?? '',
      pathWithQuery: h.get(':path') ?? '/',
      headers: withoutPseudo(h.pairs),
      body: this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks),
    };
    this.chunks.length = 0;
    const owner = this.owner;
    this.cancel = this.target.call(wire, {
      head: (status, headers) => { if (!this.over) owner.upstreamResponse(status, headersObject(headers)); },
      data: (chunk) => { if (!this.over) owner.upstreamData(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)); },
      end: (trailers) => { if (!this.over) owner.upstreamEnd(trailers === null ? {} : headersObject(trailers)); },
      fail: (err: GatewayError) => { if (!this.over) owner.upstreamFailed(err); },
    }, this.canary);
  }

  // The answer arrives whole per message from the function's thread: nothing to hold back.
  pause(): void {}
  resume(): void {}

  dispatchController(): null {
    return null;
  }

  /** The flow no longer wants the answer (a local reply replaced it). */
  abandon(): void {
    this.close();
  }

  close(): void {
    if (this.over && this.cancel === null) return;
    this.over = true;
    this.cancel?.();
    this.cancel = null;
  }
}
