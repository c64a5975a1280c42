/**
 * Path normalization at the edge, before routing and filters (Envoy's `normalize_path`,
 * `merge_slashes` and `path_with_escaped_slashes_action` of the HTTP connection manager). What a
 * route or a filter matches is then the path the upstream receives: `/x/../admin`, `/./admin`,
 * `//admin` and `/%61dmin` are all `/admin`.
 *
 * On the path only (the query is never touched), in this order:
 * 1. percent-encoding normalization (RFC 3986 §6.2.2.2): escapes of unreserved characters
 *    (ALPHA DIGIT - . _ ~) are decoded, every other escape is upper-cased; a `%` not followed by
 *    two hex digits makes the path invalid;
 * 2. escaped slashes `%2F` and `%5C` stay encoded by default (Envoy's KEEP_UNCHANGED), or make the
 *    request a 400 (`reject`), or are decoded to `/` (`unescape`, Envoy's UNESCAPE_AND_FORWARD);
 * 3. a backslash is a slash (as Envoy's URL canonicalizer, from Chromium, treats it);
 * 4. dot segments are removed (RFC 3986 §5.2.4): `.` goes, `..` takes the previous segment with
 *    it and never climbs above the root;
 * 5. adjacent slashes are merged (`mergeSlashes`), after the dot segments as in Envoy.
 * Steps 1, 3 and 4 are `normalize`; step 2 applies whenever either option is on.
 *
 * Most paths are already normal: one scan without allocation finds that and returns the input.
 */

export type EscapedSlashes = 'keep' | 'reject' | 'unescape';

export interface PathOptions {
  /** RFC 3986 normalization: percent-encoding, backslashes, dot segments. */
  readonly normalize: boolean;
  readonly mergeSlashes: boolean;
  readonly escapedSlashes: EscapedSlashes;
}

/** Why a path was refused (the request gets a 400). */
export const INVALID_PATH = 1;
export const ESCAPED_SLASH = 2;
export type PathFailure = typeof INVALID_PATH | typeof ESCAPED_SLASH;

const SLASH = 0x2f;
const DOT = 0x2e;
const PERCENT = 0x25;
const BACKSLASH = 0x5c;
const HASH = 0x23;

/** ALPHA / DIGIT / "-" / "." / "_" / "~" (RFC 3986 §2.3). */
function unreserved(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39)
    || c === 0x2d || c === DOT || c === 0x5f || c === 0x7e;
}

/** The value of a hex digit, or -1. */
function hex(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/** A `.` or `..` segment starts at `i` (just after a slash) and ends at `end`. */
function dotSegment(path: string, i: number, end: number): boolean {
  const next = i + 1 < end ? path.charCodeAt(i + 1) : SLASH;
  if (next === SLASH) return true;
  if (next !== DOT) return false;
  return i + 2 >= end || path.charCodeAt(i + 2) === SLASH;
}

/**
 * The normalized request target (path and query) of an origin-form target starting with "/",
 * or why it is refused. Returns `target` itself when nothing changes.
 */
export function normalizeTarget(target: string, opts: PathOptions): string | PathFailure {
  const q = target.indexOf('?');
  const end = q < 0 ? target.length : q;
  const active = opts.normalize || opts.mergeSlashes;
  let slow = false;
  for (let i = 0; i < end; i++) {
    const c = target.charCodeAt(i);
    // Node's parser already refuses controls, spaces and bytes over 0x7e; a fragment has no
    // place in a request target (Envoy refuses it too: RFC 9112 §3.2).
    if (c <= 0x20 || c >= 0x7f || c === HASH) return INVALID_PATH;
    if (!active) continue;
    if (c === PERCENT) {
      const hi = i + 2 < end ? hex(target.charCodeAt(i + 1)) : -1;
      const lo = hi < 0 ? -1 : hex(target.charCodeAt(i + 2));
      if (lo < 0) return INVALID_PATH;
      const value = hi * 16 + lo;
      const lower = target.charCodeAt(i + 1) >= 0x61 || target.charCodeAt(i + 2) >= 0x61;
      if (value === SLASH || value === BACKSLASH) {
        if (opts.escapedSlashes === 'reject') return ESCAPED_SLASH;
        if (opts.escapedSlashes === 'unescape' || (opts.normalize && lower)) slow = true;
      } else if (opts.normalize && (lower || unreserved(value))) {
        slow = true;
      }
      i += 2;
    } else if (c === SLASH) {
      const next = i + 1 < end ? target.charCodeAt(i + 1) : -1;
      if (next === SLASH && opts.mergeSlashes) slow = true;
      else if (next === DOT && opts.normalize && dotSegment(target, i + 1, end)) slow = true;
    } else if (c === BACKSLASH && opts.normalize) {
      slow = true;
    }
  }
  if (!slow) return target;
  const path = rewrite(target.slice(0, end), opts);
  return q < 0 ? path : path + target.slice(q);
}

/** The slow path: decode, then split into segments and rebuild. */
function rewrite(raw: string, opts: PathOptions): string {
  let decoded = '';
  let from = 0;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c === BACKSLASH && opts.normalize) {
      decoded += `${raw.slice(from, i)}/`;
      from = i + 1;
    } else if (c === PERCENT) {
      // Escapes were checked by the scan: two hex digits follow.
      const value = hex(raw.charCodeAt(i + 1)) * 16 + hex(raw.charCodeAt(i + 2));
      const escaped = raw.slice(i, i + 3);
      let out: string;
      if ((value === SLASH || value === BACKSLASH) && opts.escapedSlashes === 'unescape') out = '/';
      else if (!opts.normalize) out = escaped;
      else out = unreserved(value) ? String.fromCharCode(value) : escaped.toUpperCase();
      decoded += raw.slice(from, i) + out;
      from = i + 3;
      i += 2;
    }
  }
  decoded += raw.slice(from);
  return segments(decoded, opts);
}

/** Dot segments removed (RFC 3986 §5.2.4 on an absolute path), then slashes merged (Envoy's order). */
function segments(path: string, opts: PathOptions): string {
  const parts = path.split('/');
  let out: string[] = [];
  let trailing = false;
  for (let i = 1; i < parts.length; i++) {
    const seg = parts[i];
    trailing = false;
    if (opts.normalize && (seg === '.' || seg === '..')) {
      if (seg === '..') out.pop();
      // "/a/b/." and "/a/b/.." end in a slash: the last segment is then empty.
      trailing = i === parts.length - 1;
      continue;
    }
    out.push(seg);
  }
  if (trailing) out.push('');
  if (opts.mergeSlashes) out = out.filter((seg, i) => seg !== '' || i === out.length - 1);
  return `/${out.join('/')}`;
}
