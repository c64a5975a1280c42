/**
 * Header conversions at the edges of the data plane: Node's raw request headers to the guest's
 * HeaderMap (with HTTP/2-style pseudo-headers, also for HTTP/1 requests, as Envoy presents them),
 * the proxy headers Envoy's connection manager adds before filters run, and back to flat
 * [name, value, …] arrays for undici and `writeHead`.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { HeaderMap } from '../abi/header-map.js';
import type { Pairs } from '../abi/pairs.js';

/** Hop-by-hop headers (RFC 9110 §7.6.1) never forwarded in either direction. */
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade',
  'proxy-authenticate', 'proxy-authorization', 'http2-settings',
]);

/** Names listed in `Connection` are hop-by-hop too. */
function connectionTokens(pairs: Pairs): Set<string> | null {
  let tokens: Set<string> | null = null;
  for (let i = 0; i < pairs.length; i += 2) {
    if (pairs[i] !== 'connection') continue;
    // The usual values name no header (every Node upstream sends `keep-alive`): skip the split.
    if (pairs[i + 1] === 'keep-alive' || pairs[i + 1] === 'close') continue;
    for (const t of pairs[i + 1].split(',')) {
      const name = t.trim().toLowerCase();
      if (name !== '' && name !== 'close' && name !== 'keep-alive') (tokens ??= new Set()).add(name);
    }
  }
  return tokens;
}

function isHopByHop(name: string, extra: Set<string> | null): boolean {
  return HOP_BY_HOP.has(name) || (extra !== null && extra.has(name));
}

/**
 * The request as filters see it: pseudo-headers first, then the end-to-end headers in arrival
 * order, then the proxy headers (x-forwarded-*, x-request-id).
 */
export function requestHeaderMap(req: IncomingMessage, scheme: 'http' | 'https'): HeaderMap {
  const raw = req.rawHeaders;
  const pairs: Pairs = [':method', req.method ?? 'GET', ':path', req.url ?? '/', ':authority', req.headers.host ?? '', ':scheme', scheme];
  const lower: Pairs = new Array(raw.length);
  for (let i = 0; i < raw.length; i += 2) {
    lower[i] = raw[i].toLowerCase();
    lower[i + 1] = raw[i + 1];
  }
  // Most requests have no Connection header: skip the scan then (a hot path, ~1 % of gateway CPU).
  const extra = req.headers.connection === undefined ? null : connectionTokens(lower);
  let requestId = false;
  let forwardedFor = '';
  let forwardedHost = '';
  for (let i = 0; i < lower.length; i += 2) {
    const name = lower[i];
    if (name === 'host' || isHopByHop(name, extra)) continue;
    // One entry each: x-forwarded-for/-host appended to (Envoy's append_x_forwarded_host), the
    // client's x-forwarded-proto replaced by the listener's scheme (Envoy at the edge).
    if (name === 'x-forwarded-for') {
      forwardedFor = forwardedFor === '' ? lower[i + 1] : `${forwardedFor}, ${lower[i + 1]}`;
      continue;
    }
    if (name === 'x-forwarded-host') {
      forwardedHost = forwardedHost === '' ? lower[i + 1] : `${forwardedHost}, ${lower[i + 1]}`;
      continue;
    }
    if (name === 'x-forwarded-proto') continue;
    if (name === 'x-request-id') requestId = true;
    pairs.push(name, lower[i + 1]);
  }
  const client = req.socket.remoteAddress ?? '';
  pairs.push('x-forwarded-for', forwardedFor === '' ? client : `${forwardedFor}, ${client}`);
  pairs.push('x-forwarded-proto', scheme);
  const host = req.headers.host;
  if (host !== undefined) pairs.push('x-forwarded-host', forwardedHost === '' ? host : `${forwardedHost}, ${host}`);
  else if (forwardedHost !== '') pairs.push('x-forwarded-host', forwardedHost);
  if (!requestId) pairs.push('x-request-id', randomUUID());
  return new HeaderMap(pairs);
}

/** Response headers from undici's parsed object, with `:status` first and hop-by-hop removed. */
export function responseHeaderMap(status: number, headers: Record<string, string | string[] | undefined>): HeaderMap {
  const pairs: Pairs = [':status', String(status)];
  const connection = headers.connection;
  const extra = connection === undefined ? null : connectionTokens(['connection', String(connection)]);
  for (const name in headers) {
    if (isHopByHop(name, extra)) continue;
    const value = headers[name];
    if (value === undefined) continue;
    if (typeof value === 'string') pairs.push(name, value);
    else for (const v of value) pairs.push(name, v);
  }
  return new HeaderMap(pairs);
}

/** Flat [name, value, …] without pseudo-headers (and without hop-by-hop ones a filter added). */
export function withoutPseudo(pairs: Pairs): string[] {
  const out: string[] = [];
  for (let i = 0; i < pairs.length; i += 2) {
    const name = pairs[i];
    if (name.charCodeAt(0) === 58 /* : */ || HOP_BY_HOP.has(name)) continue;
    out.push(name, pairs[i + 1]);
  }
  return out;
}

/** Statuses whose responses carry no body (RFC 9110). */
export const NO_BODY_STATUS = new Set([204, 304]);

/** Removes every `name` entry from flat [name, value, …] headers. */
export function removeHeader(flat: string[], name: string): void {
  for (let i = flat.length - 2; i >= 0; i -= 2) if (flat[i] === name) flat.splice(i, 2);
}

/** Header values from a trailers object (undici) as pairs. */
export function objectToPairs(headers: Record<string, string | string[] | undefined> | null | undefined): Pairs {
  const pairs: Pairs = [];
  if (!headers) return pairs;
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    if (typeof value === 'string') pairs.push(name.toLowerCase(), value);
    else for (const v of value) pairs.push(name.toLowerCase(), v);
  }
  return pairs;
}
