/**
 * Stream properties as Envoy names and serialises them (reference §5.11, §6.9): request.*,
 * response.*, source.*, destination.*, connection.*, upstream.*, route and cluster names (xds.*
 * and the legacy top-level names the Go SDK still asks for), and filter state written through
 * proxy_set_property. Node properties live with the VM (node-properties.ts).
 */
import type { Pairs } from '../abi/pairs.js';
import { propBool, propInt, propMap, propString } from '../abi/properties.js';
import type { RequestFlow } from './flow.js';
import { tlsFacts, tlsProperty } from './tls.js';

type Getter = (flow: RequestFlow, rest: readonly string[]) => Uint8Array | undefined;

const NS_PER_MS = 1_000_000n;

function headersProperty(map: { pairs: Pairs } | null, rest: readonly string[]): Uint8Array | undefined {
  if (map === null) return undefined;
  const joined = new Map<string, string>();
  for (let i = 0; i < map.pairs.length; i += 2) {
    const name = map.pairs[i];
    if (name.charCodeAt(0) === 58) continue;
    const prev = joined.get(name);
    joined.set(name, prev === undefined ? map.pairs[i + 1] : `${prev},${map.pairs[i + 1]}`);
  }
  if (rest.length > 0) {
    const value = joined.get(rest[0].toLowerCase());
    return value === undefined ? undefined : Buffer.from(value, 'latin1');
  }
  const pairs: Pairs = [];
  for (const [k, v] of joined) pairs.push(k, v);
  return propMap(pairs);
}

function pathOf(flow: RequestFlow): string {
  return flow.requestHeaders.get(':path') ?? '/';
}

function latin1(value: string | undefined): Uint8Array | undefined {
  return value === undefined ? undefined : Buffer.from(value, 'latin1');
}

function durationNs(fromMs: number, toMs: number): Uint8Array {
  return propInt(BigInt(Math.round((toMs - fromMs) * 1e6)));
}

const REQUEST: Record<string, Getter> = {
  path: (f) => latin1(pathOf(f)),
  url_path: (f) => latin1(pathOf(f).split('?')[0]),
  query: (f) => latin1(pathOf(f).includes('?') ? pathOf(f).slice(pathOf(f).indexOf('?') + 1) : ''),
  host: (f) => latin1(f.requestHeaders.get(':authority')),
  scheme: (f) => latin1(f.requestHeaders.get(':scheme')),
  method: (f) => latin1(f.requestHeaders.get(':method')),
  headers: (f, rest) => headersProperty(f.requestHeaders, rest),
  referer: (f) => latin1(f.requestHeaders.get('referer')),
  useragent: (f) => latin1(f.requestHeaders.get('user-agent')),
  id: (f) => latin1(f.requestHeaders.get('x-request-id')),
  protocol: (f) => propString(f.req.httpVersionMajor === 2 ? 'HTTP/2' : `HTTP/${f.req.httpVersion}`),
  time: (f) => propInt(BigInt(f.startedAtMs) * NS_PER_MS),
  duration: (f) => durationNs(f.startedAt, performance.now()),
  size: (f) => propInt(Number(f.req.headers['content-length'] ?? f.bytesIn)),
  total_size: (f) => propInt(f.bytesIn),
  headers_bytes: (f) => propInt(f.requestHeaders.byteSize),
};

const RESPONSE: Record<string, Getter> = {
  code: (f) => (f.responseHeaders === null ? undefined : propInt(Number(f.responseHeaders.get(':status')))),
  code_details: (f) => propString(f.errorCode ?? (f.localReplyBy !== null ? f.localReplyDetails || 'wasm_local_reply' : 'via_upstream')),
  headers: (f, rest) => headersProperty(f.responseHeaders, rest),
  trailers: (f, rest) => headersProperty(f.responseTrailers, rest),
  size: (f) => propInt(f.bytesOut),
  total_size: (f) => propInt(f.bytesOut),
  flags: () => propInt(0),
  grpc_status: (f) => {
    const status = f.responseTrailers?.get('grpc-status') ?? f.responseHeaders?.get('grpc-status');
    return status === undefined ? undefined : propInt(Number(status));
  },
  backend_latency: (f) => (f.upstreamHeadersAt === 0 ? undefined : durationNs(f.upstreamStartedAt, f.upstreamHeadersAt)),
  headers_bytes: (f) => (f.responseHeaders === null ? undefined : propInt(f.responseHeaders.byteSize)),
};

const peer = (address: () => string | undefined, port: () => number | undefined): Record<string, Getter> => ({
  address: () => {
    const a = address();
    const p = port();
    return a === undefined ? undefined : propString(a.includes(':') ? `[${a}]:${p}` : `${a}:${p}`);
  },
  port: () => (port() === undefined ? undefined : propInt(port()!)),
});

function group(table: (f: RequestFlow) => Record<string, Getter>): Getter {
  return (f, rest) => (rest.length === 0 ? undefined : table(f)[rest[0]]?.(f, rest.slice(1)));
}

const TOP: Record<string, Getter> = {
  request: group(() => REQUEST),
  response: group(() => RESPONSE),
  source: group((f) => peer(() => f.req.socket.remoteAddress, () => f.req.socket.remotePort)),
  destination: group((f) => peer(() => f.req.socket.localAddress, () => f.req.socket.localPort)),
  connection: (f, rest) => {
    if (rest.length !== 1) return undefined;
    if (rest[0] === 'id') return propInt(connectionId(f));
    const tls = tlsFacts(f.req.socket);
    if (tls === null) return rest[0] === 'mtls' ? propBool(false) : undefined;
    const value = tlsProperty(tls, rest[0]);
    return typeof value === 'boolean' ? propBool(value) : value === undefined ? undefined : propString(value);
  },
  upstream: group((f) => ({
    address: () => (f.endpoint === null ? undefined : propString(f.endpoint.url.host)),
    port: () => (f.endpoint === null ? undefined : propInt(Number(f.endpoint.url.port || (f.endpoint.url.protocol === 'https:' ? 443 : 80)))),
    num_endpoints: () => propInt(f.route.cluster?.endpoints.length ?? 0),
  })),
  route_name: (f) => propString(f.route.name),
  cluster_name: (f) => (f.route.cluster === null ? undefined : propString(f.route.cluster.name)),
  xds: (f, rest) => {
    if (rest[0] === 'route_name') return propString(f.route.name);
    if (rest[0] === 'cluster_name') return f.route.cluster === null ? undefined : propString(f.route.cluster.name);
    return undefined;
  },
};

const connectionIds = new WeakMap<object, number>();
let nextConnectionId = 1;

/** A process-unique id per downstream connection (Envoy's connection.id). */
function connectionId(flow: RequestFlow): number {
  const socket = flow.req.socket;
  let id = connectionIds.get(socket);
  if (id === undefined) connectionIds.set(socket, (id = nextConnectionId++));
  return id;
}

export function streamProperty(flow: RequestFlow, path: readonly string[]): Uint8Array | undefined {
  const getter = TOP[path[0]];
  const value = getter?.(flow, path.slice(1));
  if (value !== undefined) return value;
  // Filter state: what proxy_set_property stored, under its full path (Envoy's wasm.<path>).
  return flow.filterState?.get(path.join('\0'));
}
