/**
 * What the host accepts from a guest as HTTP header material: names, values, the pseudo-headers
 * that become the request line or the status line, local-reply statuses and whole maps. Every
 * entry point that takes header bytes from a guest (header and trailer maps, local replies,
 * http_call) asks here, so the rules live in one place and nothing a guest wrote can reach Node's
 * HTTP writers and make them throw (ERR_INVALID_CHAR, ERR_HTTP_INVALID_STATUS_CODE).
 *
 * Envoy's wasm host (source/extensions/common/wasm/context.cc) copies guest headers into its
 * header maps without looking, and relies on its codecs to refuse bad bytes later; a Node host has
 * no such backstop, so the checks happen where the bytes enter. The rules:
 *
 * - names: RFC 9110 §5.6.2 token characters (lower-case on insertion, as Envoy's LowerCaseString);
 *   a leading `:` only for the pseudo-headers of that map (RFC 9113 §8.3), none in trailers;
 * - values: RFC 9110 §5.5 field-value bytes: no NUL, CR, LF (Envoy's headerValueIsValid) and, as
 *   Node's writer also refuses them, no other control character but HTAB, no DEL;
 * - `:status`, and the status of a local reply: three digits, 200..599 (a 1xx is interim and can
 *   never be the final answer, RFC 9110 §15.2; above 599 is not HTTP);
 * - `:method` a token; `:path` non-empty without space, control bytes or DEL (what would split
 *   the request line; a guest must be able to write back any target a client sent, absolute-form,
 *   `*` and raw 8-bit bytes included, so nothing stricter); `:authority` a field value (it
 *   becomes the Host header); `content-length` digits only;
 * - a whole map at most MAX_HEADER_MAP_BYTES.
 *
 * Hot path: these run on every guest header write, so they are char-code loops over a 128-entry
 * table, no regular expressions and no allocation.
 */
import { MAX_HEADER_MAP_BYTES } from './limits.js';
import type { Pairs } from './pairs.js';

/** Which map the bytes go to: the pseudo-headers allowed differ. */
export const HeaderTarget = { REQUEST: 0, RESPONSE: 1, TRAILERS: 2, EXTRA: 3 } as const;
export type HeaderTarget = (typeof HeaderTarget)[keyof typeof HeaderTarget];

/** RFC 9110 tchar: ALPHA DIGIT and !#$%&'*+-.^_`|~ */
const TCHAR = new Uint8Array(128);
for (let c = 0x30; c <= 0x39; c++) TCHAR[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TCHAR[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TCHAR[c] = 1;
for (const ch of "!#$%&'*+-.^_`|~") TCHAR[ch.charCodeAt(0)] = 1;

/** True when `s` is a non-empty run of token characters from `start`. */
function isToken(s: string, start: number): boolean {
  if (s.length <= start) return false;
  for (let i = start; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || TCHAR[c] === 0) return false;
  }
  return true;
}

/** A field value (RFC 9110 §5.5): HTAB, SP, visible ASCII and obs-text (0x80..0xFF). */
export function isHeaderValue(v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f || c > 0xff) return false;
  }
  return true;
}

/** A final status as the host sends it: 200..599. */
export function isFinalStatus(status: number): boolean {
  return (status | 0) === status && status >= 200 && status <= 599;
}

function isStatusText(v: string): boolean {
  if (v.length !== 3) return false;
  for (let i = 0; i < 3; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return isFinalStatus(Number(v));
}

function isDigits(v: string): boolean {
  if (v.length === 0 || v.length > 16) return false;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

/** A request target that cannot split the request line: no SP, controls or DEL (undici's rule too). */
function isPath(v: string): boolean {
  if (v.length === 0) return false;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f || c > 0xff) return false;
  }
  return true;
}

/** Whether `name` (already lower-case) with `value` may enter a map of `target`. */
export function isHeaderEntry(target: HeaderTarget, name: string, value: string): boolean {
  if (name.charCodeAt(0) === 0x3a /* : */) {
    switch (target) {
      case HeaderTarget.REQUEST:
        if (name === ':path') return isPath(value);
        if (name === ':method' || name === ':scheme' || name === ':protocol') return isToken(value, 0);
        if (name === ':authority') return isHeaderValue(value);
        return false;
      case HeaderTarget.RESPONSE:
        return name === ':status' && isStatusText(value);
      default:
        return false;
    }
  }
  if (!isToken(name, 0) || !isHeaderValue(value)) return false;
  // A content-length other than digits desynchronises whoever reads the framing.
  return name !== 'content-length' || isDigits(value);
}

/** Every entry of flat `pairs` acceptable for `target`, and the whole within the size limit. */
export function isHeaderList(target: HeaderTarget, pairs: Pairs): boolean {
  let size = 0;
  for (let i = 0; i < pairs.length; i += 2) {
    if (!isHeaderEntry(target, pairs[i], pairs[i + 1])) return false;
    size += pairs[i].length + pairs[i + 1].length;
  }
  return size <= MAX_HEADER_MAP_BYTES;
}

/** Whether a map of `current` bytes (keys + values) may grow by `added` bytes. */
export function fitsHeaderMap(current: number, added: number): boolean {
  return current + added <= MAX_HEADER_MAP_BYTES;
}
