/**
 * cors: answers CORS preflight requests and adds the CORS response headers, from its JSON
 * configuration, following the Fetch standard's CORS protocol (see README.md).
 */
import { Action, Header, HttpContext, RootContext, logCritical, registerRootContext } from "../sdk/index";
import { CorsConfig, parseCorsConfig } from "./config";
import { schemeEnd } from "./origins";

// The callbacks this filter handles (filters/README.md, "Callbacks").
export * from "../sdk/callbacks/lifecycle";
export * from "../sdk/callbacks/request-headers";
export * from "../sdk/callbacks/response-headers";

const PREFLIGHT_VARY = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers";
const JSON_TYPE = "application/json";
const ORIGIN = "origin";

class CorsRoot extends RootContext {
  config: CorsConfig = new CorsConfig();

  onConfigure(size: usize): bool {
    const outcome = parseCorsConfig(this.getPluginConfiguration());
    if (outcome.config === null) {
      logCritical("cors: " + outcome.error);
      return false;
    }
    this.config = outcome.config!;
    return true;
  }

  createHttpContext(contextId: u32): HttpContext {
    return new CorsStream(contextId, this, this.config);
  }
}

class CorsStream extends HttpContext {
  /** The request carried an Origin header: the response gets CORS headers (or loses them) and Vary. */
  private cors: bool = false;
  /** The value for Access-Control-Allow-Origin, or null when the origin is not allowed. */
  private allowOrigin: string | null = null;
  /** This filter answered the request itself (preflight): its response phase leaves that answer alone. */
  private answered: bool = false;

  constructor(contextId: u32, root: RootContext, private config: CorsConfig) {
    super(contextId, root);
  }

  onRequestHeaders(numHeaders: u32, endOfStream: bool): Action {
    const origin = this.getHttpRequestHeader("origin");
    if (origin === null) return Action.Continue;
    this.cors = true;
    const config = this.config;
    const allowed = config.allows(origin, schemeEnd(origin));
    if (allowed) this.allowOrigin = config.anyOrigin ? "*" : origin;
    // A preflight is an OPTIONS request with Access-Control-Request-Method (Fetch, "CORS-preflight request");
    // any other OPTIONS request is an ordinary one and goes upstream.
    const method = this.getHttpRequestHeader(":method");
    if (method === null || method != "OPTIONS") return Action.Continue;
    const requested = this.getHttpRequestHeader("access-control-request-method");
    if (requested === null) return Action.Continue;
    this.answered = true;
    if (!allowed) return this.refuse("origin not allowed");
    if (!config.allowsMethod(requested)) return this.refuse("method not allowed");
    this.sendHttpResponse(204, this.preflightHeaders(this.allowOrigin!), null, "cors_preflight");
    return Action.Pause;
  }

  onResponseHeaders(numHeaders: u32, endOfStream: bool): Action {
    if (!this.cors || this.answered) return Action.Continue;
    const config = this.config;
    // The filter owns these headers for cross-origin requests: the upstream's are replaced or removed.
    const allowOrigin = this.allowOrigin;
    if (allowOrigin !== null) {
      this.setHttpResponseHeader("access-control-allow-origin", allowOrigin);
      this.setHttpResponseHeader("access-control-expose-headers", config.exposeValue.length > 0 ? config.exposeValue : null);
      this.setHttpResponseHeader("access-control-allow-credentials", config.allowCredentials ? "true" : null);
    } else {
      this.removeHttpResponseHeader("access-control-allow-origin");
      this.removeHttpResponseHeader("access-control-expose-headers");
      this.removeHttpResponseHeader("access-control-allow-credentials");
    }
    // The answer depends on Origin whether or not it was allowed, so caches must key on it.
    const vary = this.getHttpResponseHeader("vary");
    if (vary === null || !namesOriginOrStar(vary)) this.addHttpResponseHeader("vary", "Origin");
    return Action.Continue;
  }

  private preflightHeaders(allowOrigin: string): Header[] {
    const config = this.config;
    const headers: Header[] = [
      new Header("access-control-allow-origin", allowOrigin),
      new Header("access-control-allow-methods", config.methodsValue),
    ];
    const requestedHeaders = this.getHttpRequestHeader("access-control-request-headers");
    if (requestedHeaders !== null) {
      const echoed = allowedHeaders(requestedHeaders, config);
      if (echoed.length > 0) headers.push(new Header("access-control-allow-headers", echoed));
    }
    if (config.maxAge >= 0) headers.push(new Header("access-control-max-age", config.maxAgeValue));
    if (config.allowCredentials) headers.push(new Header("access-control-allow-credentials", "true"));
    headers.push(new Header("vary", PREFLIGHT_VARY));
    return headers;
  }

  private refuse(reason: string): Action {
    const body = "{\"error\":\"forbidden\",\"message\":\"CORS preflight refused: " + reason + "\"}";
    this.sendHttpResponseString(403, [new Header("content-type", JSON_TYPE)], body, "cors_preflight_refused");
    return Action.Pause;
  }
}

/** The names of Access-Control-Request-Headers that are allowed, lower-cased, joined with ", ". */
function allowedHeaders(requested: string, config: CorsConfig): string {
  let out = "";
  let start = 0;
  while (start <= requested.length) {
    let end = requested.indexOf(",", start);
    if (end < 0) end = requested.length;
    const name = trim(requested, start, end).toLowerCase();
    if (name.length > 0 && config.allowsHeader(name)) out += (out.length > 0 ? ", " : "") + name;
    start = end + 1;
  }
  return out;
}

/** True when a Vary value lists Origin (any case) or is "*"; compares in place (no allocation per response). */
function namesOriginOrStar(vary: string): bool {
  let start = 0;
  while (start <= vary.length) {
    let end = vary.indexOf(",", start);
    if (end < 0) end = vary.length;
    let from = start;
    let to = end;
    while (from < to && isSpace(vary.charCodeAt(from))) from++;
    while (to > from && isSpace(vary.charCodeAt(to - 1))) to--;
    if (to - from == 1 && vary.charCodeAt(from) == 0x2a) return true;
    if (to - from == ORIGIN.length) {
      let same = true;
      for (let i = 0; i < ORIGIN.length && same; i++) same = (vary.charCodeAt(from + i) | 0x20) == ORIGIN.charCodeAt(i);
      if (same) return true;
    }
    start = end + 1;
  }
  return false;
}

/** `s[start, end)` without surrounding spaces and tabs. */
function trim(s: string, start: i32, end: i32): string {
  while (start < end && isSpace(s.charCodeAt(start))) start++;
  while (end > start && isSpace(s.charCodeAt(end - 1))) end--;
  return s.substring(start, end);
}

function isSpace(c: i32): bool {
  return c == 0x20 || c == 0x09;
}

registerRootContext((contextId: u32): RootContext => new CorsRoot(contextId), "cors");
