/**
 * Media types: configured ranges (`application/json`, `text/*`, `*\/*`) and the `content-type` of
 * a message, compared without parameters (`; charset=utf-8`) and without regard to case.
 */

/** The media type of a `content-type` value: before any `;`, trimmed, lower-cased. */
export function mediaTypeOf(contentType: string): string {
  const semi = contentType.indexOf(";");
  const type = semi < 0 ? contentType : contentType.substring(0, semi);
  return type.trim().toLowerCase();
}

/** True when `mediaType` (from `mediaTypeOf`) is in one of the `ranges`. */
export function matchesAny(mediaType: string, ranges: string[]): bool {
  for (let i = 0; i < ranges.length; i++) {
    const range = unchecked(ranges[i]);
    if (range == "*/*" || range == mediaType) return true;
    // "text/*": the range without its "*" is a prefix ("text/"), and there is a subtype after it.
    if (range.endsWith("/*") && mediaType.length > range.length - 1 && mediaType.startsWith(range.substring(0, range.length - 1))) {
      return true;
    }
  }
  return false;
}

/**
 * A configured media range, lower-cased: `type/subtype`, `type/*` or `*\/*`, with type and subtype
 * HTTP tokens and no parameters; "" when `text` is not one.
 */
export function checkMediaRange(text: string): string {
  const lower = text.toLowerCase();
  const slash = lower.indexOf("/");
  if (slash <= 0 || slash == lower.length - 1) return "";
  const type = lower.substring(0, slash);
  const subtype = lower.substring(slash + 1);
  if (type == "*") return subtype == "*" ? lower : "";
  if (subtype != "*" && !isToken(subtype)) return "";
  return isToken(type) ? lower : "";
}

function isToken(s: string): bool {
  if (s.length == 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ok = (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x7a) || c == 0x21 || c == 0x23 || c == 0x24 || c == 0x25
      || c == 0x26 || c == 0x27 || c == 0x2b || c == 0x2d || c == 0x2e || c == 0x5e || c == 0x5f || c == 0x60
      || c == 0x7c || c == 0x7e;
    if (!ok) return false;
  }
  return true;
}
