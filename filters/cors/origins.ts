/**
 * Origins as the Fetch standard serialises them (`scheme://host[:port]`, no path), the checks the
 * configuration runs on them, and the request-time match against the allowed list and patterns.
 */

/** `*.example.com`, optionally with a scheme (`https://*.example.com`) and a port (`…:8443`). */
export class OriginPattern {
  constructor(
    /** "" for any scheme, else the scheme the origin must have ("https"). */
    public scheme: string,
    /** What the origin's host[:port] must end with, leading dot included (".example.com"). */
    public suffix: string,
  ) {}

  /** True when `origin` (already known to be `scheme://hostport`) is a subdomain of the suffix. */
  matches(origin: string, schemeEnd: i32): bool {
    if (this.scheme.length > 0 && (schemeEnd != this.scheme.length || !origin.startsWith(this.scheme))) return false;
    const hostStart = schemeEnd + 3;
    const labelsEnd = origin.length - this.suffix.length;
    // At least one label before the suffix: "https://example.com" is not "*.example.com".
    if (labelsEnd <= hostStart || !origin.endsWith(this.suffix)) return false;
    // The labels before the suffix are a plain host prefix: no port, no userinfo, no path.
    for (let i = hostStart; i < labelsEnd; i++) if (!isHostChar(origin.charCodeAt(i))) return false;
    return origin.charCodeAt(hostStart) != 0x2e;
  }
}

/** Where "://" starts in `origin`, or -1 when it is not `scheme://…`. */
export function schemeEnd(origin: string): i32 {
  const at = origin.indexOf("://");
  if (at <= 0) return -1;
  for (let i = 0; i < at; i++) if (!isSchemeChar(origin.charCodeAt(i), i)) return -1;
  return at;
}

/** Why `origin` (lower-cased) is not a serialised origin, or "" when it is one. */
export function checkOrigin(origin: string): string {
  const end = schemeEnd(origin);
  if (end < 0) return "must start with a scheme such as \"https://\"";
  return checkHostPort(origin.substring(end + 3), false);
}

/** A pattern from its (lower-cased) text, or null when `why` was filled in. */
export function parsePattern(text: string, why: string[]): OriginPattern | null {
  let scheme = "";
  let rest = text;
  const at = text.indexOf("://");
  if (at >= 0) {
    if (schemeEnd(text) != at) {
      why.push("has an invalid scheme");
      return null;
    }
    scheme = text.substring(0, at);
    rest = text.substring(at + 3);
  }
  if (!rest.startsWith("*.")) {
    why.push("must start with \"*.\" (after an optional scheme), as in \"*.example.com\"");
    return null;
  }
  const suffix = rest.substring(1);
  const problem = checkHostPort(suffix.substring(1), true);
  if (problem.length > 0) {
    why.push(problem);
    return null;
  }
  return new OriginPattern(scheme, suffix);
}

/** Checks `host[:port]`: host characters only, an optional numeric port, nothing after. */
function checkHostPort(hostPort: string, inPattern: bool): string {
  if (hostPort.length == 0) return "has no host";
  const colon = hostPort.lastIndexOf(":");
  const host = colon >= 0 ? hostPort.substring(0, colon) : hostPort;
  if (host.length == 0) return "has no host";
  for (let i = 0; i < host.length; i++) {
    const c = host.charCodeAt(i);
    if (c == 0x2a && inPattern) return "may have \"*\" only as its first label";
    if (!isHostChar(c)) {
      return "has \"" + String.fromCharCode(c) + "\" in its host: an origin is scheme://host[:port], with no path, query or user";
    }
  }
  if (host.charCodeAt(0) == 0x2e || host.charCodeAt(host.length - 1) == 0x2e) return "has an empty label in its host";
  if (colon >= 0) {
    const port = hostPort.substring(colon + 1);
    if (port.length == 0 || port.length > 5) return "has an invalid port";
    for (let i = 0; i < port.length; i++) {
      const c = port.charCodeAt(i);
      if (c < 0x30 || c > 0x39) return "has an invalid port";
    }
    if (I32.parseInt(port) > 65535) return "has an invalid port";
  }
  return "";
}

/** Letters, digits, "-", "." and "_" (lower case only: origins are compared lower-cased). */
function isHostChar(c: i32): bool {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c == 0x2d || c == 0x2e || c == 0x5f;
}

/** RFC 3986 scheme: a letter, then letters, digits, "+", "-", ".". */
function isSchemeChar(c: i32, index: i32): bool {
  if (c >= 0x61 && c <= 0x7a) return true;
  if (index == 0) return false;
  return (c >= 0x30 && c <= 0x39) || c == 0x2b || c == 0x2d || c == 0x2e;
}
