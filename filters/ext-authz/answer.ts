/**
 * What an answer of the authorization cluster means. A call that cannot complete does not always
 * arrive as a failure (0 headers): Envoy's router answers it itself, and the filter must tell those
 * replies from the service's own (reference §4.5):
 *   - a timeout arrives as `504` with the body `upstream request timeout`;
 *   - in Envoy a refused connection or an empty cluster arrives as `503` with the body
 *     `upstream connect error or disconnect/reset before headers…` or `no healthy upstream`.
 */
import { Header } from "../sdk/index";

export enum Verdict {
  /** 2xx: let the request through. */
  Allow = 0,
  /** Any other answer of the service: its status and body go to the client. */
  Deny = 1,
  /** The router's timeout reply: the `onTimeout` policy decides. */
  Timeout = 2,
  /** No usable answer (the router's reply to an unreachable service, no valid status): the `onError` policy decides. */
  Failed = 3,
}

const TIMEOUT_BODY = "upstream request timeout";
const CONNECT_ERROR_PREFIX = "upstream connect error or disconnect/reset before headers";
const NO_HEALTHY_UPSTREAM = "no healthy upstream";

/** The `:status` of an answer, or 0 when it is missing or not a number. */
export function statusOf(headers: Header[]): u32 {
  for (let i = 0; i < headers.length; i++) {
    const h = unchecked(headers[i]);
    if (h.name != ":status") continue;
    const text = h.value;
    if (text.length != 3) return 0;
    let n: u32 = 0;
    for (let j = 0; j < 3; j++) {
      const c = text.charCodeAt(j);
      if (c < 0x30 || c > 0x39) return 0;
      n = n * 10 + <u32>(c - 0x30);
    }
    return n;
  }
  return 0;
}

/** The first value of `name` (lower-case) in `headers`, or null. */
export function firstValue(headers: Header[], name: string): string | null {
  for (let i = 0; i < headers.length; i++) if (unchecked(headers[i]).name == name) return unchecked(headers[i]).value;
  return null;
}

export function verdictOf(status: u32, body: ArrayBuffer | null): Verdict {
  if (status < 200 || status > 599) return Verdict.Failed;
  if (status < 300) return Verdict.Allow;
  if (status == 504 && bodyIs(body, TIMEOUT_BODY, false)) return Verdict.Timeout;
  if (status == 503 && (bodyIs(body, CONNECT_ERROR_PREFIX, true) || bodyIs(body, NO_HEALTHY_UPSTREAM, false))) return Verdict.Failed;
  return Verdict.Deny;
}

/** True when `body` is the ASCII `text` (or starts with it, when `prefix`). */
function bodyIs(body: ArrayBuffer | null, text: string, prefix: bool): bool {
  if (body === null) return false;
  const length = body.byteLength;
  if (length < text.length || (!prefix && length != text.length)) return false;
  const bytes = changetype<usize>(body);
  for (let i = 0; i < text.length; i++) if (<i32>load<u8>(bytes + <usize>i) != text.charCodeAt(i)) return false;
  return true;
}
