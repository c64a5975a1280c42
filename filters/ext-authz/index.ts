/**
 * ext-authz: asks an authorization service, with an http call, whether each request may go on, and
 * pauses the request until the answer (see README.md).
 */
import {
  Action, Header, HttpContext, RootContext, getHttpCallResponseBody, getHttpCallResponseHeaders, getStatus, logCritical, logWarn,
  registerRootContext, statusName,
} from "../sdk/index";
import { Verdict, firstValue, statusOf, verdictOf } from "./answer";
import { AuthzConfig, ORIGINAL_METHOD, ORIGINAL_PATH, Policy, parseAuthzConfig, policyName } from "./config";

// The callbacks this filter handles (filters/README.md, "Callbacks").
export * from "../sdk/callbacks/lifecycle";
export * from "../sdk/callbacks/request-headers";
export * from "../sdk/callbacks/callouts";

const UNAVAILABLE_BODY = "{\"error\":\"forbidden\",\"message\":\"authorization service unavailable\"}";

class AuthzRoot extends RootContext {
  config: AuthzConfig = new AuthzConfig();

  onConfigure(size: usize): bool {
    const outcome = parseAuthzConfig(this.getPluginConfiguration());
    if (outcome.config === null) {
      logCritical("ext-authz: " + outcome.error);
      return false;
    }
    this.config = outcome.config!;
    return true;
  }

  createHttpContext(contextId: u32): HttpContext {
    return new AuthzStream(contextId, this, this.config);
  }
}

class AuthzStream extends HttpContext {
  constructor(contextId: u32, root: RootContext, private config: AuthzConfig) {
    super(contextId, root);
  }

  onRequestHeaders(numHeaders: u32, endOfStream: bool): Action {
    const config = this.config;
    const r = this.dispatchHttpCall(config.cluster, this.checkHeaders(), null, [], config.timeoutMs);
    if (r.ok) return Action.Pause;
    logWarn("ext-authz: the host refused the http call to cluster \"" + config.cluster + "\" (" + statusName(r.status)
      + "); onError: " + policyName(config.onError));
    if (config.onError == Policy.Allow) {
      this.dropForwardHeaders();
      return Action.Continue;
    }
    this.denyUnavailable();
    return Action.Pause;
  }

  onHttpCallResponse(token: u32, numHeaders: u32, bodySize: usize, numTrailers: u32): void {
    const config = this.config;
    if (numHeaders == 0) {
      const s = getStatus();
      logWarn("ext-authz: the http call to cluster \"" + config.cluster + "\" failed (" + s.code.toString() + " " + s.message
        + "); onError: " + policyName(config.onError));
      this.decide(config.onError);
      return;
    }
    const headers = getHttpCallResponseHeaders();
    const status = statusOf(headers);
    const body = bodySize > 0 ? getHttpCallResponseBody(0, <u32>bodySize) : null;
    const verdict = verdictOf(status, body);
    if (verdict == Verdict.Allow) {
      this.dropForwardHeaders();
      for (let i = 0; i < headers.length; i++) {
        const h = unchecked(headers[i]);
        if (config.forwards(h.name)) this.addHttpRequestHeader(h.name, h.value);
      }
      this.resumeHttpRequest();
    } else if (verdict == Verdict.Deny) {
      const type = firstValue(headers, "content-type");
      this.sendHttpResponse(status, type === null ? [] : [new Header("content-type", type)], body, "ext_authz_denied");
    } else if (verdict == Verdict.Timeout) {
      logWarn("ext-authz: the http call to cluster \"" + config.cluster + "\" timed out after " + config.timeoutMs.toString()
        + " ms; onTimeout: " + policyName(config.onTimeout));
      this.decide(config.onTimeout);
    } else {
      logWarn("ext-authz: cluster \"" + config.cluster + "\" gave no usable answer (status " + status.toString() + "); onError: "
        + policyName(config.onError));
      this.decide(config.onError);
    }
  }

  /** The check request: `GET <path>`, the configured request headers, and the original path and method. */
  private checkHeaders(): Header[] {
    const config = this.config;
    const out: Header[] = [new Header(":method", "GET"), new Header(":path", config.path), new Header(":authority", config.cluster)];
    if (config.headers.length > 0) {
      // One hostcall for all of them, and every value of a repeated header.
      const request = this.getHttpRequestHeaders();
      for (let i = 0; i < request.length; i++) if (config.copies(unchecked(request[i]).name)) out.push(unchecked(request[i]));
    }
    if (config.includePath) {
      const path = this.getHttpRequestHeader(":path");
      const method = this.getHttpRequestHeader(":method");
      if (path !== null) out.push(new Header(ORIGINAL_PATH, path));
      if (method !== null) out.push(new Header(ORIGINAL_METHOD, method));
    }
    return out;
  }

  /** The policy for an answer that never came: resume (allow) or 403 (deny). */
  private decide(policy: Policy): void {
    if (policy == Policy.Allow) {
      this.dropForwardHeaders();
      this.resumeHttpRequest();
    } else {
      this.denyUnavailable();
    }
  }

  /** Only the authorization service speaks for these headers: the client's copies never go upstream. */
  private dropForwardHeaders(): void {
    const names = this.config.forwardHeaders;
    for (let i = 0; i < names.length; i++) this.removeHttpRequestHeader(unchecked(names[i]));
  }

  private denyUnavailable(): void {
    this.sendHttpResponseString(403, [new Header("content-type", "application/json")], UNAVAILABLE_BODY, "ext_authz_unavailable");
  }
}

registerRootContext((contextId: u32): RootContext => new AuthzRoot(contextId), "ext-authz");
