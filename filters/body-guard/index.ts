/**
 * body-guard: a request body size limit, a JSON well-formedness check for configured request
 * content types, and redaction of configured patterns in response bodies; see README.md. Built
 * with the SDK in ../sdk.
 */
import { Action, HttpContext, RootContext, logCritical, registerRootContext, validateJson } from "../sdk/index";
import { BodyGuardConfig, parseBodyGuardConfig } from "./config";
import { matchesAny, mediaTypeOf } from "./media-type";
import { redact } from "./redact";
import { invalidJson, payloadTooLarge } from "./replies";

// The callbacks this filter handles (filters/README.md, "Callbacks").
export * from "../sdk/callbacks/lifecycle";
export * from "../sdk/callbacks/request-headers";
export * from "../sdk/callbacks/response-headers";
export * from "../sdk/callbacks/bodies";

class BodyGuardRoot extends RootContext {
  config: BodyGuardConfig = new BodyGuardConfig();

  onConfigure(size: usize): bool {
    const outcome = parseBodyGuardConfig(this.getPluginConfiguration());
    if (outcome.config === null) {
      logCritical("body-guard: " + outcome.error);
      return false;
    }
    this.config = outcome.config!;
    return true;
  }

  createHttpContext(contextId: u32): HttpContext {
    return new BodyGuardStream(contextId, this, this.config);
  }
}

class BodyGuardStream extends HttpContext {
  /** The request body is buffered whole and checked as JSON. */
  private checkJson: bool = false;
  /** Request body bytes passed on so far (when not buffering). */
  private received: u64 = 0;
  /** The response body is buffered whole and redacted. */
  private redacting: bool = false;
  /** This filter answered the request itself: its own reply is left alone. */
  private replied: bool = false;

  constructor(contextId: u32, root: RootContext, private config: BodyGuardConfig) {
    super(contextId, root);
  }

  onRequestHeaders(numHeaders: u32, endOfStream: bool): Action {
    if (endOfStream) return Action.Continue; // no body
    const limit = this.config.maxRequestBytes;
    if (limit >= 0) {
      // Refuse before any of the body arrives when its announced length is already too large.
      const declared = this.getHttpRequestHeader("content-length");
      if (declared !== null && parseLength(declared!) > limit) return this.tooLarge();
    }
    if (this.config.jsonContentTypes.length > 0) {
      const type = this.getHttpRequestHeader("content-type");
      this.checkJson = type !== null && matchesAny(mediaTypeOf(type!), this.config.jsonContentTypes);
    }
    return Action.Continue;
  }

  onRequestBody(bodySize: usize, endOfStream: bool): Action {
    if (this.replied) return Action.Pause;
    const limit = this.config.maxRequestBytes;
    if (this.checkJson) {
      // Buffering: bodySize is everything received so far.
      if (limit >= 0 && <i64>bodySize > limit) return this.tooLarge();
      if (!endOfStream) return Action.Pause;
      return this.validate(bodySize);
    }
    if (limit >= 0) {
      // Streaming: bodySize is this chunk; what came before has gone upstream already.
      this.received += <u64>bodySize;
      if (this.received > <u64>limit) return this.tooLarge();
    }
    return Action.Continue;
  }

  /** Trailers end the body instead of a last body callback: check what was buffered. */
  onRequestTrailers(numTrailers: u32): Action {
    if (!this.checkJson || this.replied) return Action.Continue;
    const body = this.getHttpRequestBody();
    return this.validate(body === null ? 0 : <usize>body.byteLength);
  }

  onResponseHeaders(numHeaders: u32, endOfStream: bool): Action {
    if (endOfStream || this.replied || this.config.redact.length == 0) return Action.Continue;
    const type = this.getHttpResponseHeader("content-type");
    if (type === null || !matchesAny(mediaTypeOf(type!), this.config.redactContentTypes)) return Action.Continue;
    // A compressed body cannot be searched; it passes unchanged.
    const encoding = this.getHttpResponseHeader("content-encoding");
    if (encoding !== null && !isIdentity(encoding!)) return Action.Continue;
    this.redacting = true;
    // The length changes with the replacements: the host frames the edited body.
    this.removeHttpResponseHeader("content-length");
    return Action.Continue;
  }

  onResponseBody(bodySize: usize, endOfStream: bool): Action {
    if (!this.redacting) return Action.Continue;
    if (!endOfStream) return Action.Pause;
    this.redactBody();
    return Action.Continue;
  }

  onResponseTrailers(numTrailers: u32): Action {
    if (this.redacting) this.redactBody();
    return Action.Continue;
  }

  private validate(size: usize): Action {
    if (size == 0) return Action.Continue; // an empty body is not checked
    const body = this.getHttpRequestBody(0, <u32>size);
    if (body === null) return Action.Continue;
    const error = validateJson(changetype<usize>(body), <usize>body.byteLength);
    if (error === null) return Action.Continue;
    this.replied = true;
    invalidJson(this, error!);
    return Action.Pause;
  }

  private tooLarge(): Action {
    this.replied = true;
    payloadTooLarge(this, this.config.maxRequestBytes);
    return Action.Pause;
  }

  private redactBody(): void {
    const body = this.getHttpResponseBody();
    if (body === null) return;
    const edited = redact(body!, this.config.redact);
    if (edited !== null) this.setHttpResponseBody(0, <u32>body!.byteLength, edited);
  }
}

/** A content-length value as a number (capped at 10^15); -1 when it is not one (the host has checked it anyway). */
function parseLength(text: string): i64 {
  const s = text.trim();
  if (s.length == 0) return -1;
  let n: i64 = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
    if (n < 1_000_000_000_000_000) n = n * 10 + <i64>(c - 0x30);
  }
  return n;
}

/** No content coding: an empty `content-encoding` or `identity`. */
function isIdentity(encoding: string): bool {
  const e = encoding.trim().toLowerCase();
  return e.length == 0 || e == "identity";
}

registerRootContext((contextId: u32): RootContext => new BodyGuardRoot(contextId), "body-guard");
