/**
 * The configuration contract (design "Configuration"): one schema gives the defaults, the
 * validation and the types, and is exported as JSON Schema (config/gateway.schema.json) for editor
 * completion. Cross-references (a route's cluster, a route's filters, services) are checked in
 * validate.ts, where the whole document is known.
 */
import { z } from 'zod';

const name = z.string().min(1).regex(/^[A-Za-z0-9_.:-]+$/, 'use letters, digits, _ . : -');
/** A listener, cluster, plugin or route name. */
export const nameSchema = name;
const port = z.number().int().min(0).max(65535);
const millis = z.number().int().positive();

/** Configuration handed to a guest: an object becomes JSON text, a string goes verbatim. */
const guestConfiguration = z.union([z.string(), z.record(z.string(), z.unknown()), z.array(z.unknown())],
  { error: 'must be a string (passed as is) or an object (passed as JSON text)' }).default('');

const endpoint = z.string().refine((value) => {
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.pathname === '/' && !url.search;
  } catch {
    return false;
  }
}, 'must be an http(s) origin such as "http://127.0.0.1:9000" (no path)');

const millisOrOff = z.number().int().min(0);

/** A PEM certificate (chain) file and its private key file. */
const certificateFiles = {
  certFile: z.string().min(1).describe('PEM certificate chain (the leaf first)'),
  keyFile: z.string().min(1).describe('PEM private key of the certificate'),
};

/** TLS termination: certificates are read at load and at each reload (SIGHUP), without dropping connections. */
export const listenerTlsSchema = z.object({
  ...certificateFiles,
  sni: z.array(z.object({
    serverNames: z.array(z.string().min(1).regex(/^(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$/, 'must be a host name, or *. and a host name')).min(1),
    ...certificateFiles,
  }).strict()).default([]).describe('Certificates by server name (SNI): exact names or *.domain; others get the default certificate'),
  minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2').describe('Oldest TLS version accepted'),
  clientCaFile: z.string().min(1).optional().describe('PEM CA certificates client certificates are verified against (mTLS)'),
  requireClientCertificate: z.boolean().default(true).describe('With clientCaFile: refuse a handshake without a valid client certificate (false: ask for one, and let connection.mtls tell)'),
}).strict();

const HTTP2_DEFAULTS = { enabled: true, cleartext: false, maxConcurrentStreams: 100, maxHeaderListSize: 65536, maxPrematureResets: 100 };

/** HTTP/2 from clients, with Envoy's edge limits (its recommended 100 concurrent streams). */
export const listenerHttp2Schema = z.object({
  enabled: z.boolean().default(true).describe('With tls: offer h2 through ALPN (clients without it keep HTTP/1.1)'),
  cleartext: z.boolean().default(false).describe('Without tls: also accept h2c with prior knowledge (connections opening with the HTTP/2 preface)'),
  maxConcurrentStreams: z.number().int().min(1).max(10_000).default(100).describe('Streams one connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS)'),
  maxHeaderListSize: z.number().int().min(1024).max(1024 * 1024).default(65536).describe('Bytes of a request\'s header list (SETTINGS_MAX_HEADER_LIST_SIZE)'),
  maxPrematureResets: z.number().int().min(1).default(100)
    .describe('A connection whose client reset more streams than this before their response began, and more than half of its streams, is closed (rapid reset)'),
}).strict();

/**
 * A public listener, with what it does to requests before routing (normalization) and how long
 * and how many clients it lets in (client timeouts, connection limit). Defaults follow Envoy's
 * edge recommendations and nginx.
 */
export const listenerSchema = z.object({
  name,
  address: z.string().default('0.0.0.0'),
  port,
  normalizePath: z.boolean().default(true)
    .describe('RFC 3986 path normalization before routing and filters: dot segments, percent-encoding, backslashes'),
  mergeSlashes: z.boolean().default(true).describe('Merge adjacent slashes in the path before routing and filters'),
  escapedSlashes: z.enum(['keep', 'reject', 'unescape']).default('keep')
    .describe('%2F and %5C in the path: keep them encoded, reject the request (400), or decode them to "/"'),
  headersTimeoutMs: millis.default(10_000).describe('Time from a connection\'s accept, or a request\'s first byte, to the end of its headers (slowloris); 408 and close'),
  requestTimeoutMs: millisOrOff.default(300_000).describe('Time to receive a whole request, body included; 408 and close; 0 turns it off'),
  bodyTimeoutMs: millisOrOff.default(60_000).describe('Longest pause between two body chunks of a request; 408 and close; 0 turns it off'),
  idleTimeoutMs: millis.default(65_000).describe('How long an idle keep-alive connection stays open between requests'),
  maxRequestHeaders: z.number().int().positive().max(10_000).default(100)
    .describe('Header lines a request may carry (Envoy\'s max_headers_count); over it 431'),
  maxConnections: z.number().int().positive().default(10_000)
    .describe('Connections open at once; a new one over the limit is closed at accept (keep it below ulimit -n)'),
  tls: listenerTlsSchema.optional().describe('Terminate TLS (HTTPS) on this listener'),
  http2: listenerHttp2Schema.default(HTTP2_DEFAULTS).describe('HTTP/2 from clients: h2 through ALPN with tls, h2c with prior knowledge without'),
}).strict().refine((l) => l.requestTimeoutMs === 0 || l.requestTimeoutMs >= l.headersTimeoutMs, {
  message: 'must be at least headersTimeoutMs (or 0 to turn it off)', path: ['requestTimeoutMs'],
});

const httpStatus = z.number().int().min(100).max(599);

/**
 * Active HTTP health checks of a cluster's endpoints (Envoy's health_checks[].http_health_check,
 * with its field names in camelCase). Present turns them on; `{}` takes every default.
 */
export const healthCheckSchema = z.object({
  path: z.string().regex(/^\/\S*$/, 'must start with "/" and hold no spaces').default('/healthz').describe('Path of the GET each probe sends'),
  host: z.string().regex(/^[^\s/@]+$/, 'must be a host name, with an optional port').optional()
    .describe('Host header of the probes (default: the endpoint\'s host:port; Envoy sends the cluster name)'),
  intervalMs: millis.default(5000).describe('Time from the end of one probe of an endpoint to the start of the next (plus up to 10% jitter)'),
  timeoutMs: millis.default(1000).describe('A probe with no complete answer by then fails (result timeout)'),
  healthyThreshold: z.number().int().positive().default(2).describe('Consecutive passed probes that put an unhealthy endpoint back in service'),
  unhealthyThreshold: z.number().int().positive().default(3).describe('Consecutive failed probes that take an endpoint out of service'),
  expectedStatuses: z.array(z.union([httpStatus, z.object({
    start: httpStatus, end: z.number().int().min(101).max(600),
  }).strict().refine((r) => r.end > r.start, { message: 'end must be above start (the range is [start, end))', path: ['end'] })]))
    .min(1).default([{ start: 200, end: 400 }])
    .describe('Statuses that pass: a status, or { start, end } for [start, end) as Envoy\'s expected_statuses; default any 2xx or 3xx'),
}).strict();

/**
 * Passive outlier detection (Envoy's outlier_detection): the answers of forwarded requests eject
 * an endpoint for a while. Present turns it on; `{}` takes every default.
 */
export const outlierDetectionSchema = z.object({
  consecutive5xx: z.number().int().min(0).default(5)
    .describe('Consecutive 5xx answers or gateway failures that eject an endpoint; 0 turns this rule off'),
  consecutiveGatewayFailure: z.number().int().min(0).default(5)
    .describe('Consecutive gateway failures (connect failure, reset, timeout, or a 502/503/504 answer) that eject an endpoint; 0 turns this rule off'),
  baseEjectionTimeMs: millis.default(30_000).describe('An ejection lasts this times the number of times the endpoint was ejected'),
  maxEjectionTimeMs: millis.default(300_000).describe('Longest ejection, whatever the count; baseEjectionTimeMs when that is larger (Envoy\'s max_ejection_time)'),
  maxEjectionPercent: z.number().min(0).max(100).default(50)
    .describe('Share of the cluster\'s endpoints that may be ejected at once; at least one endpoint always stays in service'),
}).strict();

/**
 * Envoy's retry budget of a cluster (circuit_breakers.thresholds.retry_budget): the retries in
 * flight to the cluster, from every route, may not exceed `percent` of its active requests (in
 * flight and waiting for a connection), and are always allowed up to `minConcurrency`.
 */
export const retryBudgetSchema = z.object({
  percent: z.number().min(0).max(100).default(20)
    .describe('Retries in flight may be at most this share (0-100) of the cluster\'s active requests, in flight and waiting (Envoy\'s budget_percent)'),
  minConcurrency: z.number().int().min(0).default(3)
    .describe('Retries in flight always allowed, whatever the share (Envoy\'s min_retry_concurrency)'),
}).strict();

export const clusterSchema = z.object({
  name,
  endpoints: z.array(endpoint).min(1).describe('Origins such as "http://127.0.0.1:9000", picked round robin'),
  connectTimeoutMs: millis.default(2000),
  timeoutMs: millis.default(15000),
  /** Connections kept per endpoint. */
  maxConnections: z.number().int().positive().default(128).describe('Connections kept per endpoint'),
  /** Envoy's circuit breaker max_pending_requests (default 1024): requests waiting for a connection. */
  maxPendingRequests: z.number().int().min(0).default(1024)
    .describe('Requests waiting for a free connection, all endpoints together; over it a request gets 503 at once'),
  queueTimeoutMs: millis.default(5000).describe('How long a request waits for a free connection before it gets 503'),
  /** Speak HTTP/2 to the endpoints: forwarded requests (gRPC, request trailers) and gRPC callouts. */
  http2: z.boolean().default(false).describe('Speak HTTP/2 to the endpoints (h2c for http://): forwarded requests, gRPC among them, and gRPC callouts'),
  healthCheck: healthCheckSchema.optional().describe('Active HTTP health checks of every endpoint: one failing them gets no traffic until it passes again'),
  outlierDetection: outlierDetectionSchema.optional().describe('Passive health: an endpoint whose forwarded requests fail in a row is ejected for a while'),
  retryBudget: retryBudgetSchema.default({ percent: 20, minConcurrency: 3 })
    .describe('Bounds the retries of every route to this cluster, so that retries cannot multiply its load (Envoy\'s retry_budget)'),
}).strict();

const sha256Pin = z.string().regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex digits');
/** A tag of the Redis module registry (`name:channel`, moved by `edge-gateway push`) or a module's sha256. */
export const registryRefSchema = z.string().regex(/^([A-Za-z0-9_.-]+:[A-Za-z0-9_.-]+|[0-9a-fA-F]{64})$/,
  'must be a tag "name:channel" (such as "auth:stable") or a module sha256 (64 hex digits)');

export const moduleSourceSchema = z.union([
  z.string().min(1),
  z.object({
    file: z.string().min(1),
    sha256: sha256Pin.optional(),
    watch: z.boolean().optional().describe('Swap the plugin to the file\'s new bytes when it changes (debounced; bytes that are not a whole module are never loaded)'),
    signature: z.string().min(1).optional().describe('File of the detached signature (default: the module file + ".sig", when present)'),
  }).strict().refine((m) => !(m.watch === true && m.sha256 !== undefined), { message: 'watch and a sha256 pin exclude each other: a pinned file cannot change', path: ['watch'] }),
  z.object({
    url: z.string().regex(/^https?:\/\//, 'must be an http(s) URL'),
    sha256: sha256Pin,
    signature: z.string().min(1).optional().describe('The detached signature (base64)'),
  }).strict(),
  z.object({ redis: registryRefSchema.describe('A tag of the module registry (modules.registry), followed as it moves, or a sha256') }).strict(),
], { error: 'must be a file path, { file, sha256?, watch?, signature? }, { url, sha256, signature? } (the pin is required for a URL) or { redis: "name:channel" | sha256 }' });

const percent = z.number().min(0).max(100);

/** What sends a stream to the canary besides its share, and what keeps one client on one version. */
export const canaryRuleSchema = z.object({
  percent: percent.default(5).describe('Share of streams sent to the canary, 0-100 (the first of steps when steps are given)'),
  match: z.object({
    header: z.object({ name: z.string().min(1), exact: z.string().optional(), regex: z.string().describe('RE2 syntax, matching the whole value').optional() }).strict().optional(),
    cookie: z.object({ name: z.string().min(1), exact: z.string().optional() }).strict().optional(),
  }).strict().optional().describe('Streams matching this always go to the canary (the others by percent); a header or cookie with no value given matches when present'),
  sticky: z.union([
    z.object({ header: z.string().min(1) }).strict(),
    z.object({ cookie: z.string().min(1) }).strict(),
    z.object({ client: z.literal(true) }).strict(),
  ]).optional().describe('Keeps one client on one version: the share is taken over a hash of this header, cookie or the client address'),
  rollback: z.object({
    windowMs: millis.default(10_000).describe('Failure rates are compared over windows of this length'),
    minStreams: z.number().int().positive().default(20).describe('Canary streams a window needs before it is judged'),
    margin: z.number().min(0).max(1).default(0.05).describe('Rolled back when the canary\'s failure rate exceeds the stable version\'s by more than this (0.05 = 5 points)'),
  }).strict().default({ windowMs: 10_000, minStreams: 20, margin: 0.05 }),
  steps: z.array(percent).min(1).optional().describe('Percents to go through, e.g. [5, 25, 100]; reaching 100 promotes the canary'),
  holdMs: millis.default(60_000).describe('Time at each step before the next one (with steps)'),
}).strict();

/** A plugin's second module version for a share of its streams. */
export const canarySchema = canaryRuleSchema.extend({
  module: moduleSourceSchema.describe('The canary\'s module'),
  configuration: guestConfiguration.optional().describe('The canary\'s configuration (default: the plugin\'s)'),
}).strict();

/**
 * Sandbox limits of one plugin's VM. The budget is the time of one outermost guest call (a
 * callback with every hostcall it makes): wall-clock time, counted only while the process had the
 * CPU (abi/budget.ts); the memory cap bounds the guest's linear memory.
 */
export const pluginLimitsSchema = z.object({
  cpuMs: millis.max(60_000).default(50).describe('Budget of one callback (stream, timer, queue, callout answer), in ms (wall-clock time while the process has the CPU: a node taken off the CPU does not trap)'),
  startCpuMs: millis.max(600_000).default(1000).describe('Budget of start-up (instantiation, _initialize/_start, on_vm_start, on_configure), in ms'),
  memoryMb: z.number().int().min(1).max(4096).default(128).describe('Cap of the guest linear memory in MiB; memory.grow past it fails'),
  recycleMemoryMb: z.number().int().min(1).max(4096).optional()
    .describe('Soft threshold: a VM whose memory passed it is replaced by a fresh one for new streams (default 3/4 of memoryMb)'),
}).strict();

export const pluginSchema = z.object({
  name,
  module: moduleSourceSchema.describe('The .wasm file (relative to the working directory), { file, sha256 }, or { url, sha256 }'),
  rootId: z.string().default('').describe('root_id handed to the SDK (plugin_root_id)'),
  vmId: z.string().default('').describe('Plugins with equal vmId, module and vmConfiguration share one VM'),
  configuration: guestConfiguration.describe('Plugin configuration: an object reaches the guest as JSON text, a string as is'),
  vmConfiguration: guestConfiguration.describe('VM configuration: an object reaches the guest as JSON text, a string as is'),
  /** What the guest sees through WASI environ_get (never the gateway's own environment). */
  environment: z.record(z.string(), z.string()).default({}),
  failurePolicy: z.enum(['closed', 'open', 'reload']).default('closed')
    .describe('When the VM fails: closed answers 503, open skips the filter, reload starts a fresh VM'),
  limits: pluginLimitsSchema.default({ cpuMs: 50, startCpuMs: 1000, memoryMb: 128 }).describe('CPU budget and memory cap of the plugin\'s VM'),
  /** Capability restriction (Envoy's allowed_capabilities): absent allows every hostcall. */
  allowedHostcalls: z.array(z.string().min(1)).optional()
    .describe('Hostcalls (env.proxy_* and WASI names) the module may import; absent allows all, a module importing another is refused'),
  requireSignature: z.boolean().optional().describe('Refuse this plugin\'s modules unless signed by one of modules.trustedKeys (default: modules.requireSignature)'),
  canary: canarySchema.optional().describe('A second module version for a share of the streams, rolled back by itself when it fails more than the stable one'),
}).strict();

const headerMatch = z.object({
  name: z.string().min(1),
  exact: z.string().optional(),
  regex: z.string().describe('RE2 syntax, matching the whole value').optional(),
  present: z.boolean().optional(),
}).strict();

/**
 * Envoy's retry policy of a route (route.retry_policy, field names in camelCase). Present turns
 * retries on; `{}` takes every default. README "Retries" has the semantics.
 */
export const retrySchema = z.object({
  retryOn: z.array(z.enum(['5xx', 'gateway-error', 'reset', 'connect-failure', 'retriable-status-codes'])).min(1)
    .default(['connect-failure', 'reset', 'gateway-error'])
    .describe('What is retried: 5xx (a 5xx answer, or no answer at all), gateway-error (a 502, 503 or 504 answer, or no answer at all), reset (no answer: connect failure, disconnect, reset, per-try timeout), connect-failure (the connection could not be made), retriable-status-codes (an answer with one of retriableStatusCodes)'),
  retriableStatusCodes: z.array(z.number().int().min(100).max(599)).default([])
    .describe('Statuses retried when retryOn has retriable-status-codes'),
  numRetries: z.number().int().min(0).default(1).describe('Retries after the first try (Envoy\'s num_retries)'),
  perTryTimeoutMs: millis.optional()
    .describe('How long one try waits for the response headers, from the end of the request body; a try past it is abandoned and counts as a reset (default: what is left of the route\'s timeoutMs)'),
  backoff: z.object({
    baseMs: millis.default(25).describe('Base interval: retry N waits a random time in [0, baseMs × 2^(N-1)) (full jitter)'),
    maxMs: millis.optional().describe('Cap of that interval (default 10 × baseMs)'),
  }).strict().refine((b) => b.maxMs === undefined || b.maxMs >= b.baseMs, { message: 'must be at least baseMs', path: ['maxMs'] })
    .default({ baseMs: 25 }).describe('Back-off between tries: Envoy\'s exponential back-off with full jitter'),
  bufferBytes: z.number().int().min(0).default(64 * 1024)
    .describe('A request body up to this size is kept to be sent again; a larger one makes the request not retriable'),
}).strict()
  .refine((r) => r.retriableStatusCodes.length > 0 || !r.retryOn.includes('retriable-status-codes'),
    { message: 'retriable-status-codes needs retriableStatusCodes', path: ['retriableStatusCodes'] })
  .refine((r) => r.retriableStatusCodes.length === 0 || r.retryOn.includes('retriable-status-codes'),
    { message: 'are used only when retryOn has retriable-status-codes', path: ['retriableStatusCodes'] });

/** An edge function: a wasi:http component that answers a route itself (README "Edge functions"). */
export const functionSchema = z.object({
  name,
  component: moduleSourceSchema.describe('The component: a file path, { file, sha256?, watch?, signature? }, { url, sha256 } or { redis: tag }, as a plugin\'s module'),
  environment: z.record(z.string().regex(/^[^=\0]+$/, 'a variable name holds no = or NUL'), z.string()).default({})
    .describe('The only environment the function sees (wasi:cli/environment); the gateway\'s own is never passed'),
  requireSignature: z.boolean().optional().describe('Refuse this function\'s components unless signed by one of modules.trustedKeys (default: modules.requireSignature)'),
  allowedHosts: z.array(name).default([]).describe('Clusters the function may call with outgoing wasi:http, by name as the request\'s authority (http://backend/path); any other is refused'),
  instances: z.number().int().min(1).max(64).default(2).describe('Warm instances, each in its own thread: requests served at once; more wait for the next ready one'),
  reuse: z.enum(['snapshot', 'fresh', 'keep']).default('snapshot').describe('After a request: snapshot puts the instance back to its state after start-up (memory and globals), fresh makes a new one, keep serves the next request on it as it is'),
  canary: canaryRuleSchema.pick({ percent: true, match: true, sticky: true, rollback: true, steps: true, holdMs: true }).extend({ component: moduleSourceSchema.describe('The canary\'s component') }).strict().optional()
    .describe('A second component for a share of requests: by percent, header or cookie match, sticky per client, rolled back when it fails more than the first (as a plugin\'s canary)'),
  limits: z.object({
    timeoutMs: millis.default(5000).describe('A request that has not got its whole response by then gets 504 and its instance is discarded'),
    memoryMb: z.number().int().min(1).max(4096).default(128).describe('Linear memory an instance may grow to; past it memory.grow fails inside the guest'),
    heapMb: z.number().int().min(16).max(4096).default(64).describe('V8 heap of each instance\'s thread (the bindings\' JavaScript)'),
    maxQueue: z.number().int().min(0).default(64).describe('Requests that may wait for a ready instance; more get 503'),
    queueTimeoutMs: millis.default(2000).describe('A request that waited this long for an instance gets 503'),
  }).strict().default({ timeoutMs: 5000, memoryMb: 128, heapMb: 64, maxQueue: 64, queueTimeoutMs: 2000 }),
}).strict();

export const routeSchema = z.object({
  name,
  match: z.object({
    pathPrefix: z.string().regex(/^\//, 'must start with "/"').optional(),
    path: z.string().regex(/^\//, 'must start with "/"').optional(),
    pathRegex: z.string().describe('RE2 syntax, matching the whole path without the query').optional(),
    /** Exact host, or "*.example.com" for any subdomain. Compared without the port. */
    host: z.string().optional(),
    methods: z.array(z.string().min(1)).optional(),
    headers: z.array(headerMatch).optional(),
  }).strict().default({}).describe('All given conditions must hold; at most one of path, pathPrefix, pathRegex'),
  cluster: name.optional().describe('The cluster requests are forwarded to (give cluster or function)'),
  function: name.optional().describe('The edge function that answers instead of a cluster (give cluster or function)'),
  filters: z.array(z.union([name, z.object({
    plugin: name,
    configuration: guestConfiguration.describe('This route\'s configuration of the plugin: another root context in the plugin\'s VM, never another VM'),
  }).strict()])).default([])
    .describe('Plugins run on the request phase in this order, on the response phase in reverse: a name, or { plugin, configuration } for a configuration of this route'),
  /** Largest body a filter may buffer; over it requests get 413 and responses 500. */
  bodyLimitBytes: z.number().int().positive().default(1024 * 1024),
  /** Overrides the cluster's timeoutMs for this route. */
  timeoutMs: millis.optional(),
  retry: retrySchema.optional().describe('Retries of failed upstream tries (Envoy\'s retry_policy); absent: none'),
}).strict();

/**
 * Shared-data quota of one vm_id, whatever the backend: keys + values + a fixed overhead per entry
 * (README "Shared data quota"); a write that does not fit evicts that vm_id's least recently used
 * entries. 16 MiB by default, an eighth of the default guest memory cap. The vm_id's shared
 * queues get the same size as a quota of their own (README "Memory limits: shared queues").
 */
const maxBytesPerVm = z.number().int().min(4096).max(2 ** 40).default(16 * 1024 * 1024)
  .describe('Bytes of shared data one vm_id may hold (keys + values + 384 per entry; past it the least recently used entries are evicted), and, separately, bytes its shared queues may hold together (items + 64 each; past it the oldest items are dropped)');

export const configSchema = z.object({
  node: z.object({ id: z.string().min(1).default('edge-1'), cluster: z.string().default('edge') }).strict().default({ id: 'edge-1', cluster: 'edge' })
    .describe('Answers the node.* / xds.node.* properties'),
  listeners: z.array(listenerSchema).min(1).describe('Public HTTP listeners'),
  admin: z.object({
    address: z.string().default('127.0.0.1'),
    port: port.default(9901),
    token: z.string().min(16).optional().describe('Bearer token of the calls that change plugins (better: tokenEnv)'),
    tokenEnv: z.string().min(1).default('EDGE_GATEWAY_ADMIN_TOKEN').describe('Environment variable holding the bearer token, when token is not given'),
  }).strict().default({ address: '127.0.0.1', port: 9901, tokenEnv: 'EDGE_GATEWAY_ADMIN_TOKEN' })
    .describe('Admin listener: /healthz /readyz /metrics /plugins, and the plugin API (changes need the bearer token; with none set they are off)'),
  modules: z.object({
    registry: z.object({
      url: z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL'),
      prefix: z.string().max(64).regex(/^[^{}\s]*$/, 'must not hold braces or spaces').default('edge:'),
      cluster: z.boolean().default(false),
    }).strict().optional().describe('The Redis module registry that `edge-gateway push` writes to and { redis: tag } modules follow'),
    cacheDir: z.string().min(1).default('.edge-gateway/modules').describe('Where modules from the registry are kept, for a start while Redis is down'),
    trustedKeys: z.array(z.string().min(1)).default([]).describe('Ed25519 public keys (PEM text or PEM file paths) that module signatures are checked against'),
    requireSignature: z.boolean().default(false).describe('Refuse every module not signed by one of trustedKeys'),
  }).strict().default({ cacheDir: '.edge-gateway/modules', trustedKeys: [], requireSignature: false })
    .describe('Where modules come from and which are trusted'),
  sharedState: z.discriminatedUnion('backend', [
    z.object({ backend: z.literal('memory'), maxBytesPerVm }).strict(),
    z.object({
      backend: z.literal('redis'),
      url: z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL'),
      cluster: z.boolean().default(false).describe('url is one node of a Redis Cluster'),
      prefix: z.string().max(64).regex(/^[^{}\s]*$/, 'must not hold braces or spaces (they would break the hash tags)').default('edge:')
        .describe('Prefix of every Redis key and channel: nodes sharing data use the same one'),
      queueClaimIdleMs: millis.default(60_000)
        .describe('Shared-queue items another node left pending this long are taken over by a node that registered the queue'),
      readyWithRedisOnly: z.boolean().default(false)
        .describe('/readyz answers 503 while Redis is unreachable (default: ready, serving the node\'s own copy)'),
      maxBytesPerVm,
    }).strict().describe('Shared data and shared queues across every node on this Redis and prefix'),
  ]).default({ backend: 'memory', maxBytesPerVm: 16 * 1024 * 1024 })
    .describe('Where proxy_set_shared_data and shared queues live: memory (this process) or redis (shared data across nodes)'),
  log: z.object({ level: z.enum(['trace', 'debug', 'info', 'warn', 'error']).default('info') }).strict().default({ level: 'info' })
    .describe('Gateway log (JSON lines on stdout)'),
  workers: z.union([z.number().int().min(1).max(256), z.literal('auto')]).default(1)
    .describe('Processes serving the listeners (node:cluster): a number, or auto for one per core; 1 is one process'),
  drainDelayMs: millisOrOff.default(0).describe('After SIGTERM, how long /readyz answers 503 while the listeners still accept and serve, so a load balancer takes the node out before they close'),
  drainTimeoutMs: millis.default(10000).describe('Once the listeners close (after drainDelayMs), how long in-flight requests may take before they are closed'),
  clusters: z.array(clusterSchema).default([]).describe('Upstreams; also the targets of http_call and grpc_call'),
  functions: z.array(functionSchema).default([]).describe('Edge functions: wasi:http components that routes name instead of a cluster'),
  plugins: z.array(pluginSchema).default([]).describe('One entry per (module, root id, configuration)'),
  services: z.array(name).default([]).describe('Plugins run as background root contexts (timers, queues, callouts), with no HTTP'),
  routes: z.array(routeSchema).default([]).describe('First match wins; no match answers 404'),
}).strict();

export type GatewayConfig = z.output<typeof configSchema>;
export type ListenerConfig = z.output<typeof listenerSchema>;
export type ClusterConfig = z.output<typeof clusterSchema>;
export type HealthCheckConfig = z.output<typeof healthCheckSchema>;
export type OutlierDetectionConfig = z.output<typeof outlierDetectionSchema>;
export type PluginConfig = z.output<typeof pluginSchema>;
export type PluginLimits = z.output<typeof pluginLimitsSchema>;
export type RouteConfig = z.output<typeof routeSchema>;
export type FunctionConfig = z.output<typeof functionSchema>;
export type RetryConfig = z.output<typeof retrySchema>;
export type RetryBudgetConfig = z.output<typeof retryBudgetSchema>;
export type RouteFilterConfig = RouteConfig['filters'][number];
export type ModuleSourceConfig = z.output<typeof moduleSourceSchema>;
export type CanaryConfig = z.output<typeof canarySchema>;
export type CanaryRuleConfig = z.output<typeof canaryRuleSchema>;

/** The plugin a route's filter entry names. */
export function filterPlugin(entry: RouteFilterConfig): string {
  return typeof entry === 'string' ? entry : entry.plugin;
}

/** The JSON Schema of the input document (defaults shown, nothing required that has one). */
export function configJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}
