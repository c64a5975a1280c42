/**
 * jwt: verifies a bearer JSON Web Token (HS256, RS256) on every request, copies selected claims
 * to request headers, and answers 401 with `WWW-Authenticate` (RFC 6750 §3) when the token is
 * missing or invalid (see README.md). Built with the SDK in ../sdk.
 */
import { Action, Header, HttpContext, JsonValue, MapType, RootContext, getCurrentTimeNanoseconds, getHeaderMapValue, logCritical,
  quoteJsonString, registerRootContext, removeHeaderMapValue, replaceHeaderMapValue } from "../sdk/index";
import { JwtConfig, parseJwtConfig } from "./config";
import { bypasses, tokenFromHeader, tokenFromQuery, withoutQueryParameter } from "./token";
import { verifyToken } from "./verify";

// The callbacks this filter handles (filters/README.md, "Callbacks").
export * from "../sdk/callbacks/lifecycle";
export * from "../sdk/callbacks/request-headers";

const MISSING = "a bearer token is required";

class JwtRoot extends RootContext {
  config: JwtConfig = new JwtConfig();

  onConfigure(size: usize): bool {
    const outcome = parseJwtConfig(this.getPluginConfiguration());
    if (outcome.config === null) {
      logCritical("jwt: " + outcome.error);
      return false;
    }
    this.config = outcome.config!;
    return true;
  }

  createHttpContext(contextId: u32): HttpContext {
    return new JwtStream(contextId, this, this.config);
  }
}

class JwtStream extends HttpContext {
  constructor(contextId: u32, root: RootContext, private config: JwtConfig) {
    super(contextId, root);
  }

  onRequestHeaders(numHeaders: u32, endOfStream: bool): Action {
    const config = this.config;
    // Claim headers are the filter's to write: whatever the client sent under those names goes.
    const mappings = config.claimsToHeaders;
    for (let i = 0; i < mappings.length; i++) removeHeaderMapValue(MapType.HttpRequestHeaders, mappings[i].value);

    // The path is read only when a bypass list or a query parameter needs it.
    const needsPath = config.bypass.length > 0 || config.queryParameter.length > 0;
    const path = needsPath ? getHeaderMapValue(MapType.HttpRequestHeaders, ":path") : null;
    if (path !== null && bypasses(path, config.bypass)) return Action.Continue;

    let token: string | null = null;
    const headerValue = getHeaderMapValue(MapType.HttpRequestHeaders, config.header);
    if (headerValue !== null) token = tokenFromHeader(headerValue, config.header == "authorization");
    const fromHeader = token !== null;
    if (token === null && path !== null && config.queryParameter.length > 0) {
      const fromQuery = tokenFromQuery(path, config.queryParameter);
      if (fromQuery !== null && fromQuery.length > 0) token = fromQuery;
    }
    if (token === null) return this.reject("", MISSING);

    const verdict = verifyToken(token, config, <f64>getCurrentTimeNanoseconds() / 1e9);
    if (verdict.claims === null) return this.reject("invalid_token", verdict.error);

    const claims = verdict.claims!;
    for (let i = 0; i < mappings.length; i++) {
      const value = claimAsHeader(claims.get(mappings[i].name));
      if (value !== null) replaceHeaderMapValue(MapType.HttpRequestHeaders, mappings[i].value, value);
    }
    if (config.removeToken) {
      if (fromHeader) removeHeaderMapValue(MapType.HttpRequestHeaders, config.header);
      if (path !== null && config.queryParameter.length > 0) {
        const stripped = withoutQueryParameter(path, config.queryParameter);
        if (stripped != path) replaceHeaderMapValue(MapType.HttpRequestHeaders, ":path", stripped);
      }
    }
    return Action.Continue;
  }

  /** 401 (RFC 6750 §3): no error code when the request carried no token (§3.1), else `error`. */
  private reject(error: string, description: string): Action {
    const realm = "Bearer realm=\"" + this.config.realm + "\"";
    const challenge = error.length == 0 ? realm : realm + ", error=\"" + error + "\", error_description=\"" + description + "\"";
    const code = error.length == 0 ? "missing_token" : error;
    const body = "{\"error\":" + quoteJsonString(code) + ",\"message\":" + quoteJsonString(description) + "}";
    this.sendHttpResponseString(401, [new Header("www-authenticate", challenge), new Header("content-type", "application/json")], body,
      "jwt_" + code);
    return Action.Pause;
  }
}

/** A claim as a header value: strings as they are, numbers as written, booleans; null for anything else. */
function claimAsHeader(claim: JsonValue | null): string | null {
  if (claim === null) return null;
  let text: string;
  if (claim.isString()) text = claim.asString();
  else if (claim.isNumber()) text = claim.numberText();
  else if (claim.isBool()) text = claim.asBool() ? "true" : "false";
  else return null;
  // A claim with a line break or NUL would split or corrupt the header: it is not copied.
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c < 0x20 && c != 0x09) || c == 0x7f) return null;
  }
  return text;
}

registerRootContext((contextId: u32): RootContext => new JwtRoot(contextId), "jwt");
