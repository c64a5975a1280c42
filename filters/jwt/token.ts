/**
 * Where the bearer token is found (RFC 6750 §2): the Authorization header with the `Bearer`
 * scheme (§2.1), another configured header, or a query parameter (§2.3). Also the path helpers:
 * the bypass prefixes and taking the token out of the query string.
 */

/**
 * The token in a header value, or null when there is none. For `authorization` the value must use
 * the Bearer scheme (case-insensitive, RFC 7235 §2.1), another scheme meaning "no bearer token";
 * for any other header the value is the token, with an optional `Bearer ` prefix. An empty token
 * counts as none.
 */
export function tokenFromHeader(value: string, isAuthorization: bool): string | null {
  const v = trim(value);
  let token: string | null = null;
  if (hasBearerScheme(v)) token = trim(v.substring(6));
  else if (!isAuthorization && v.toLowerCase() != "bearer") token = v;
  return token !== null && token.length > 0 ? token : null;
}

/** "Bearer" followed by at least one space (RFC 6750 §2.1: "Bearer" 1*SP b64token). */
function hasBearerScheme(v: string): bool {
  if (v.length < 7 || v.charCodeAt(6) != 0x20) return false;
  return v.substring(0, 6).toLowerCase() == "bearer";
}

function trim(v: string): string {
  let start = 0;
  let end = v.length;
  while (start < end && isOws(v.charCodeAt(start))) start++;
  while (end > start && isOws(v.charCodeAt(end - 1))) end--;
  return start == 0 && end == v.length ? v : v.substring(start, end);
}

@inline function isOws(c: i32): bool {
  return c == 0x20 || c == 0x09;
}

/** Index of '?' in `path`, or its length. */
function queryStart(path: string): i32 {
  const i = path.indexOf("?");
  return i < 0 ? path.length : i;
}

/** The value of the first `name=` parameter of the query string of `path`, or null. */
export function tokenFromQuery(path: string, name: string): string | null {
  const start = queryStart(path);
  let at = start + 1;
  while (at <= path.length - 1) {
    let end = path.indexOf("&", at);
    if (end < 0) end = path.length;
    if (end - at > name.length && path.charCodeAt(at + name.length) == 0x3d && path.substr(at, name.length) == name) {
      return path.substring(at + name.length + 1, end);
    }
    at = end + 1;
  }
  return null;
}

/** `path` without any `name` or `name=…` parameter; the '?' goes too when nothing is left. */
export function withoutQueryParameter(path: string, name: string): string {
  const start = queryStart(path);
  if (start == path.length) return path;
  const kept = new Array<string>();
  let at = start + 1;
  while (at <= path.length) {
    let end = path.indexOf("&", at);
    if (end < 0) end = path.length;
    const part = path.substring(at, end);
    if (part != name && !(part.startsWith(name) && part.charCodeAt(name.length) == 0x3d) && part.length > 0) kept.push(part);
    at = end + 1;
  }
  const base = path.substring(0, start);
  return kept.length == 0 ? base : base + "?" + kept.join("&");
}

/**
 * True if the path part of `path` is under one of the `prefixes`, at a segment boundary: "/health"
 * covers "/health" and "/health/live" but not "/healthz" (a prefix ending in "/" covers what
 * follows it). A path with a dot segment, a backslash or a percent-escape never bypasses: an
 * upstream that normalises "/public/../admin" or "/public%2F..%2Fadmin" must not be reached
 * without a token.
 */
export function bypasses(path: string, prefixes: string[]): bool {
  if (prefixes.length == 0) return false;
  const p = path.substring(0, queryStart(path));
  if (p.includes("%") || p.includes("\\") || p.includes("/./") || p.includes("/../") || p.endsWith("/.") || p.endsWith("/..")) return false;
  for (let i = 0; i < prefixes.length; i++) {
    const prefix = prefixes[i];
    if (!p.startsWith(prefix)) continue;
    if (p.length == prefix.length || prefix.endsWith("/") || p.charCodeAt(prefix.length) == 0x2f) return true;
  }
  return false;
}
