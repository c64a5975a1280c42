/**
 * The request line and Host of a request, checked and put in the one form that routing, filters
 * and the upstream see, before any of them runs (what Envoy's HTTP/1 codec and connection manager
 * do in front of its router):
 *
 * - an absolute-form target (`GET http://host/path`) becomes origin-form: its authority replaces
 *   the Host header (RFC 9112 §3.2.2: the origin ignores a received Host then) and the path goes
 *   on as any other. Only http and https URIs, no userinfo (RFC 9110 §4.2.4);
 * - `*` is the target of OPTIONS only; anything else must start with "/";
 * - the path is normalized (normalize-path.ts);
 * - a second Host header, or a Host that is not `host[:port]`, is a 400 (RFC 9112 §3.2);
 * - HTTP/0.9 (a request line without a version) is a 400, a major version other than 1 a 505;
 * - more header lines than `maxRequestHeaders` is a 431 (Envoy's
 *   common_http_protocol_options.max_headers_count, 100): Node would drop the extra ones
 *   silently, and the one dropped could be the one that matters.
 *
 * Node's parser (llhttp, strict) already refuses malformed request lines and header syntax,
 * CR/LF in values, Content-Length with Transfer-Encoding, bad chunked framing and a missing Host
 * on HTTP/1.1; these are the checks it leaves to the application.
 *
 * The result is written back into the IncomingMessage (`url`, `headers.host`), which is what the
 * request flow, the WebSocket tunnel and the access log read.
 */
import type { IncomingMessage } from 'node:http';
import { isHttp2Request } from './http2.js';
import { ESCAPED_SLASH, normalizeTarget, type PathOptions } from './normalize-path.js';

export interface TargetOptions extends PathOptions {
  /** Header lines a request may carry. */
  readonly maxHeaders: number;
}

/** A request refused at the edge: the status and the reason (the access log's `error`). */
export interface Rejection {
  readonly status: 400 | 431 | 505;
  readonly reason: string;
}

const reject = (status: 400 | 431 | 505, reason: string): Rejection => Object.freeze({ status, reason });
export const REJECTIONS = {
  invalidPath: reject(400, 'invalid_path'),
  escapedSlash: reject(400, 'escaped_slash_rejected'),
  invalidUrl: reject(400, 'invalid_url'),
  invalidHost: reject(400, 'invalid_host'),
  duplicateHost: reject(400, 'duplicate_host'),
  http09: reject(400, 'http_0_9_not_supported'),
  version: reject(505, 'http_version_not_supported'),
  tooManyHeaders: reject(431, 'request_headers_too_many'),
} as const;

/** Characters of a reg-name or a port: unreserved, sub-delims, "%" (RFC 3986 §3.2.2). */
const HOST_CHAR = new Uint8Array(128);
for (const c of 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&\'()*+,;=%') HOST_CHAR[c.charCodeAt(0)] = 1;
/** Characters inside an IP-literal's brackets (IPv6 and IPvFuture, without zone identifiers). */
const IP_LITERAL_CHAR = new Uint8Array(128);
for (const c of '0123456789abcdefABCDEFvV:.') IP_LITERAL_CHAR[c.charCodeAt(0)] = 1;

/** `host[:port]` as RFC 3986 §3.2.2–3.2.3 allows it (no userinfo); empty is allowed (RFC 9110 §7.2). */
export function validAuthority(value: string): boolean {
  let i = 0;
  const n = value.length;
  if (n > 0 && value.charCodeAt(0) === 0x5b /* [ */) {
    const close = value.indexOf(']');
    if (close < 2) return false;
    for (i = 1; i < close; i++) if (IP_LITERAL_CHAR[value.charCodeAt(i)] !== 1) return false;
    i = close + 1;
  } else {
    for (; i < n; i++) {
      const c = value.charCodeAt(i);
      if (c === 0x3a /* : */) break;
      if (c >= 128 || HOST_CHAR[c] !== 1) return false;
    }
  }
  if (i === n) return true;
  if (value.charCodeAt(i) !== 0x3a) return false;
  if (n - i - 1 > 5) return false;
  for (i++; i < n; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

/** How many Host headers the request carried (Node's `headers` keeps only the first). */
function hostCount(raw: readonly string[]): number {
  let count = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (name.length === 4 && (name === 'Host' || name === 'host' || name.toLowerCase() === 'host')) count++;
  }
  return count;
}

/** The scheme prefix length of an http(s) absolute URI ("http://" 7, "https://" 8), or 0. */
function schemeLength(url: string): number {
  const lower = url.slice(0, 8).toLowerCase();
  if (lower.startsWith('http://')) return 7;
  if (lower === 'https://') return 8;
  return 0;
}

/**
 * Checks `req` and rewrites its target to the normalized origin-form (and Host to the
 * absolute-form's authority). Returns null when the request may go on, or why it may not.
 */
export function prepareRequest(req: IncomingMessage, opts: TargetOptions): Rejection | null {
  // HTTP/2 streams come here as HTTP/1.1 requests (http2.ts: asHttp1Request); no Host can repeat there.
  if (req.httpVersionMajor !== 1 && !isHttp2Request(req)) return req.httpVersionMajor === 0 ? REJECTIONS.http09 : REJECTIONS.version;
  // Node drops header lines past its maxHeadersCount silently (the listener sets it one higher).
  if (req.rawHeaders.length > 2 * opts.maxHeaders) return REJECTIONS.tooManyHeaders;
  if (hostCount(req.rawHeaders) > 1) return REJECTIONS.duplicateHost;
  const url = req.url ?? '';
  let target = url;
  if (url.charCodeAt(0) !== 0x2f /* / */ && url !== '*') {
    const scheme = schemeLength(url);
    if (scheme === 0) return REJECTIONS.invalidUrl;
    let end = scheme;
    while (end < url.length) {
      const c = url.charCodeAt(end);
      if (c === 0x2f || c === 0x3f /* ? */ || c === 0x23 /* # */) break;
      end++;
    }
    const authority = url.slice(scheme, end);
    if (authority === '' || !validAuthority(authority)) return REJECTIONS.invalidUrl;
    const rest = url.slice(end);
    target = rest === '' ? '/' : rest.charCodeAt(0) === 0x3f ? `/${rest}` : rest;
    req.headers.host = authority;
  } else {
    const host = req.headers.host;
    if (host !== undefined && !validAuthority(host)) return REJECTIONS.invalidHost;
    if (url === '*') return req.method === 'OPTIONS' ? null : REJECTIONS.invalidPath;
  }
  const normalized = normalizeTarget(target, opts);
  if (typeof normalized === 'number') return normalized === ESCAPED_SLASH ? REJECTIONS.escapedSlash : REJECTIONS.invalidPath;
  if (normalized !== url) req.url = normalized;
  return null;
}
