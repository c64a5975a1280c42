/**
 * rate-limit: a token bucket per key (the client address or a header value) kept in shared data,
 * exact across gateway nodes that share it: each node writes only its own entry and readers sum
 * them (bucket.ts, store.ts). Refused requests get 429 (configurable) with Retry-After; every
 * limited response carries x-ratelimit-limit / -remaining / -reset. See README.md.
 */
import {
  Action, Header, HttpContext, RootContext, Status, getPropertyString, logCritical, logWarn, registerRootContext, statusName,
} from "../sdk/index";
import { Decision, decide } from "./bucket";
import { KeySource, RateLimitConfig, parseRateLimitConfig } from "./config";
import { Bucket, CAS_ATTEMPTS, escapeSegment } from "./store";

// The callbacks this filter handles (filters/README.md, "Callbacks").
export * from "../sdk/callbacks/lifecycle";
export * from "../sdk/callbacks/request-headers";
export * from "../sdk/callbacks/response-headers";

class RateLimitRoot extends RootContext {
  config: RateLimitConfig = new RateLimitConfig();
  /** Escaped segments of the shared-data names. */
  domain: string = "";
  node: string = "";
  limitText: string = "";

  onConfigure(size: usize): bool {
    const outcome = parseRateLimitConfig(this.getPluginConfiguration());
    if (outcome.config === null) {
      logCritical("rate-limit: " + outcome.error);
      return false;
    }
    const config = outcome.config!;
    if (config.domain.length == 0) {
      const name = getPropertyString(["plugin_name"]);
      config.domain = name !== null && name.length > 0 ? name : "rate-limit";
    }
    let node = getPropertyString(["node", "id"]);
    if (node === null || node.length == 0) {
      logWarn("rate-limit: the host has no node.id property; counting as node \"unknown\" (give every node a distinct id)");
      node = "unknown";
    }
    this.config = config;
    this.domain = escapeSegment(config.domain);
    this.node = escapeSegment(node!);
    this.limitText = (<i64>config.capacity).toString();
    return true;
  }

  createHttpContext(contextId: u32): HttpContext {
    return new RateLimitStream(contextId, this);
  }

  /** Takes a token for `key` (escaped), or says when one will be there. */
  take(key: string, now: u64): Decision {
    const c = this.config;
    const bucket = new Bucket(this.domain, key, this.node);
    const nodes = bucket.nodes();
    let d: Decision | null = null;
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const totals = bucket.read(nodes);
      d = decide(c.capacity, c.refillPerSecond, totals.sum, totals.latest, totals.ownNet, now);
      if (!d.allowed) return d;
      const status = bucket.write(d.net, now, totals.ownCas);
      if (status == Status.Ok) return d;
      if (status != Status.CasMismatch) {
        logWarn("rate-limit: cannot write the bucket of " + key + ": " + statusName(status) + "; the request is let through");
        return d;
      }
    }
    // Other writers on this node won every round: let the request through rather than stall it.
    logWarn("rate-limit: gave up counting a request for " + key + " after " + CAS_ATTEMPTS.toString() + " CAS mismatches; the request is let through");
    return d!;
  }
}

class RateLimitStream extends HttpContext {
  /** The decision for this request, for the response headers; null when it was not limited. */
  private decision: Decision | null = null;

  constructor(contextId: u32, private filter: RateLimitRoot) {
    super(contextId, filter);
  }

  onRequestHeaders(numHeaders: u32, endOfStream: bool): Action {
    const key = this.key();
    // No key (no such header, no client address): this request is not limited.
    if (key === null) return Action.Continue;
    const d = this.filter.take(escapeSegment(key), this.getCurrentTimeNanoseconds());
    this.decision = d;
    if (d.allowed) return Action.Continue;
    const retry = d.retryAfterSeconds.toString();
    const headers = this.rateHeaders(d);
    headers.push(new Header("retry-after", retry));
    headers.push(new Header("content-type", "application/json"));
    const body = "{\"error\":\"rate_limited\",\"message\":\"rate limit exceeded\",\"retryAfterSeconds\":" + retry + "}";
    this.sendHttpResponseString(this.filter.config.statusCode, headers, body, "rate_limited");
    return Action.Pause;
  }

  onResponseHeaders(numHeaders: u32, endOfStream: bool): Action {
    const d = this.decision;
    if (d === null) return Action.Continue;
    // Replaced, not added: an upstream's own x-ratelimit-* would contradict the gateway's.
    const headers = this.rateHeaders(d);
    for (let i = 0; i < headers.length; i++) this.setHttpResponseHeader(headers[i].name, headers[i].value);
    return Action.Continue;
  }

  private rateHeaders(d: Decision): Header[] {
    return [
      new Header("x-ratelimit-limit", this.filter.limitText),
      new Header("x-ratelimit-remaining", d.remaining.toString()),
      new Header("x-ratelimit-reset", d.resetSeconds.toString()),
    ];
  }

  private key(): string | null {
    const config = this.filter.config;
    if (config.source == KeySource.Header) {
      const value = this.getHttpRequestHeader(config.header);
      return value === null || value.length == 0 ? null : value;
    }
    const address = getPropertyString(["source", "address"]);
    return address === null || address.length == 0 ? null : withoutPort(address!);
  }
}

/** `1.2.3.4:5678` → `1.2.3.4`, `[::1]:5678` → `::1`; an address without a port is kept as is. */
function withoutPort(address: string): string {
  if (address.charCodeAt(0) == 0x5b) {
    const end = address.indexOf("]");
    return end > 0 ? address.substring(1, end) : address;
  }
  const colon = address.indexOf(":");
  if (colon < 0 || address.indexOf(":", colon + 1) >= 0) return address;
  return address.substring(0, colon);
}

registerRootContext((contextId: u32): RootContext => new RateLimitRoot(contextId), "rate-limit");
