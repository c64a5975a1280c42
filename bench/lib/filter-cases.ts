/**
 * The shipped filters as the per-filter benches run them (bench/filters.ts in the ABI host alone,
 * bench/proxy-filters.ts through the gateway): each with its README configuration, what the
 * request must carry for the filter to do its ordinary work, and the headers that prove it did.
 *
 * Every case is a request the filter lets through (no local reply): the figures are the price of
 * the common path, not of a rejection.
 */
import { createHmac } from 'node:crypto';

export interface FilterCase {
  /** The module: filters/dist/<name>.wasm. */
  name: string;
  rootId: string;
  config: unknown;
  /** Headers the request carries besides the bench's own (a value replaces one of the same name). */
  request: Record<string, string>;
  /** Request headers the upstream must see after the filter (undefined: must be absent). */
  upstreamSees: Record<string, string | undefined>;
  /** Response headers the client must see after the filter (undefined: must be absent). */
  clientSees: Record<string, string | undefined>;
  /** The filter pauses the request for a callout before it continues. */
  pauses?: boolean;
  /** The filter calls the cluster `authz` (bench/lib/servers.ts answers /authz). */
  authz?: boolean;
  /** A metric name the filter must have made visible on the gateway's /metrics. */
  metric?: string;
  note: string;
}

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

function hs256(secret: string, payload: object): string {
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: 'hs-2024' }));
  const body = b64url(JSON.stringify(payload));
  return `${head}.${body}.${createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url')}`;
}

const JWT_SECRET = 'a shared secret of at least 32 bytes!';
const now = Math.floor(Date.now() / 1000);
/** Valid for a day from the start of the bench. */
const jwtToken = hs256(JWT_SECRET, {
  sub: '1234567890', tenant: 'acme', iss: 'https://auth.example.com', aud: 'orders-api', iat: now, exp: now + 86_400,
});

export const FILTER_CASES: FilterCase[] = [
  {
    name: 'stamp', rootId: '', config: 'bench', request: {},
    upstreamSees: { 'x-edge-stamp': 'bench' }, clientSees: { 'x-served-by': 'edge-gateway' },
    note: 'WAT reference: one add per direction',
  },
  {
    name: 'headers', rootId: 'headers',
    config: {
      request: { rename: { 'x-client-id': 'x-consumer-id' }, remove: ['x-internal-debug', 'x-forwarded-user'],
        set: { 'x-edge': 'true', 'x-api-version': 2 }, add: { 'x-tag': ['edge', 'public'] } },
      response: { remove: ['server', 'x-powered-by'], set: { 'strict-transport-security': 'max-age=31536000' },
        add: { 'x-served-by': 'edge-gateway' } },
    },
    request: {},
    upstreamSees: { 'x-api-version': '2', 'x-edge': 'true' },
    clientSees: { server: undefined, 'x-served-by': 'edge-gateway', 'strict-transport-security': 'max-age=31536000' },
    note: 'README config: 7 request and 4 response header operations',
  },
  {
    name: 'api-key', rootId: 'api-key',
    config: {
      keys: [
        { name: 'partner-a', sha256: 'eea8347814f0c5b7b7e0022248627c596b771aa09549345d07a418dbac640e04' },
        { name: 'partner-b', sha256: 'b0a42aaf4da85be7bcfc15c5038c57ad9556d63877098523e55a43ec33517153' },
      ],
      header: 'x-api-key', query: 'api_key', forwardNameHeader: 'x-api-key-name',
    },
    request: { 'x-api-key': 'partner-a-secret' },
    upstreamSees: { 'x-api-key-name': 'partner-a', 'x-api-key': undefined },
    clientSees: {},
    note: 'README config; + x-api-key (a valid key)',
  },
  {
    name: 'jwt', rootId: 'jwt',
    config: {
      keys: [{ kid: 'hs-2024', alg: 'HS256', secret: JWT_SECRET }],
      issuers: ['https://auth.example.com'], audiences: ['orders-api'],
      claimsToHeaders: { sub: 'x-user-id', tenant: 'x-tenant-id' }, removeToken: true, bypass: ['/health'], realm: 'orders',
    },
    request: { authorization: `Bearer ${jwtToken}` },
    upstreamSees: { 'x-user-id': '1234567890', 'x-tenant-id': 'acme', authorization: undefined },
    clientSees: {},
    note: 'README config, HS256 key only; a valid HS256 token in authorization',
  },
  {
    name: 'rate-limit', rootId: 'rate-limit',
    config: { key: { source: 'header', header: 'x-api-key-name' }, capacity: 1_000_000_000, refillPerSecond: 5, statusCode: 429 },
    request: { 'x-api-key-name': 'partner-a' },
    upstreamSees: {},
    clientSees: { 'x-ratelimit-limit': '1000000000' },
    note: 'README config but capacity 10⁹ (every request admitted); + x-api-key-name',
  },
  {
    name: 'cors', rootId: 'cors',
    config: {
      allowOrigins: ['https://app.example.com'], allowOriginPatterns: ['*.example.com'], allowMethods: ['GET', 'POST'],
      allowHeaders: ['content-type', 'authorization'], exposeHeaders: ['x-request-id'], allowCredentials: true, maxAge: 600,
    },
    request: { origin: 'https://app.example.com' },
    upstreamSees: {},
    clientSees: { 'access-control-allow-origin': 'https://app.example.com' },
    note: 'README config; + origin (allowed, not a preflight)',
  },
  {
    name: 'ext-authz', rootId: 'ext-authz',
    config: {
      cluster: 'authz', path: '/authz', timeoutMs: 500, headers: ['authorization', 'x-user'],
      forwardHeaders: ['x-auth-user'], onTimeout: 'deny', onError: 'deny', includePath: true,
    },
    request: {},
    upstreamSees: { 'x-auth-user': 'jane' },
    clientSees: {},
    pauses: true,
    authz: true,
    note: 'README config; the authorization service answers 200 + x-auth-user',
  },
  {
    name: 'observe', rootId: 'observe', config: { prefix: 'edge.observe' },
    request: {}, upstreamSees: {}, clientSees: {},
    metric: 'wasmcustom_edge_observe_requests_total{response_code_class="2xx",route="api"}',
    note: 'README config; on_log records a counter and a histogram',
  },
  {
    name: 'body-guard', rootId: 'body-guard',
    config: {
      maxRequestBytes: 65536, jsonContentTypes: ['application/json'],
      redact: ['#{4}-#{4}-#{4}-#{4}', { pattern: '#{3}-#{2}-#{4}', replacement: '***-**-****' }],
    },
    request: {}, upstreamSees: {}, clientSees: {},
    note: 'README config; GET without a body (nothing to limit or redact)',
  },
];

/** The shipped chain of five, as config/gateway.yaml's routes chain them (bench/proxy-filters.ts, bench/report.ts). */
export const SHIPPED_CHAIN: readonly string[] = ['observe', 'cors', 'rate-limit', 'api-key', 'headers'];

/** What differs from a case's expectations, given a header lookup on each side (empty: all met). */
export function unmet(c: FilterCase, upstream: (name: string) => string | undefined, client: (name: string) => string | undefined): string[] {
  const problems: string[] = [];
  for (const [name, want] of Object.entries(c.upstreamSees)) {
    const got = upstream(name);
    if (got !== want) problems.push(`upstream saw ${name}: ${got}, expected ${want}`);
  }
  for (const [name, want] of Object.entries(c.clientSees)) {
    const got = client(name);
    if (got !== want) problems.push(`client saw ${name}: ${got}, expected ${want}`);
  }
  return problems;
}
