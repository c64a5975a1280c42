/**
 * Where a presented key is found in a request: a header value, or a query parameter of `:path`
 * (percent-decoded, `+` read as a space, as in HTML forms), and how the query parameter is taken
 * out of `:path` before the request goes upstream.
 */

/** The UTF-8 bytes of the first `name=value` parameter of the query in `path`, or null. */
export function queryValue(path: string, name: string): Uint8Array | null {
  const start = path.indexOf("?");
  if (start < 0) return null;
  let at = start + 1;
  while (at <= path.length) {
    let end = path.indexOf("&", at);
    if (end < 0) end = path.length;
    const eq = path.indexOf("=", at);
    const nameEnd = eq >= 0 && eq < end ? eq : end;
    if (nameEnd - at == name.length && path.substring(at, nameEnd) == name) {
      return eq >= 0 && eq < end ? percentDecode(path, eq + 1, end) : new Uint8Array(0);
    }
    at = end + 1;
  }
  return null;
}

/** `path` without any `name` parameter (the `?` goes too when nothing is left). */
export function withoutQueryParam(path: string, name: string): string {
  const start = path.indexOf("?");
  if (start < 0) return path;
  const kept = new Array<string>();
  let at = start + 1;
  while (at <= path.length) {
    let end = path.indexOf("&", at);
    if (end < 0) end = path.length;
    const eq = path.indexOf("=", at);
    const nameEnd = eq >= 0 && eq < end ? eq : end;
    const isKey = nameEnd - at == name.length && path.substring(at, nameEnd) == name;
    if (!isKey && end > at) kept.push(path.substring(at, end));
    at = end + 1;
  }
  const base = path.substring(0, start);
  return kept.length == 0 ? base : base + "?" + kept.join("&");
}

/** Decodes `%XX` and `+` in s[from, to) into UTF-8 bytes; a malformed `%` is kept as is. */
function percentDecode(s: string, from: i32, to: i32): Uint8Array {
  const raw = Uint8Array.wrap(String.UTF8.encode(s.substring(from, to)));
  const out = new Uint8Array(raw.length);
  let n = 0;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (c == 0x2b) {
      out[n++] = 0x20;
    } else if (c == 0x25 && i + 2 < raw.length && hexValue(raw[i + 1]) >= 0 && hexValue(raw[i + 2]) >= 0) {
      out[n++] = <u8>((hexValue(raw[i + 1]) << 4) | hexValue(raw[i + 2]));
      i += 2;
    } else {
      out[n++] = c;
    }
  }
  return out.subarray(0, n);
}

function hexValue(c: u8): i32 {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}
