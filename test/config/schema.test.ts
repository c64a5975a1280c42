import { describe, expect, it } from 'vitest';
import { clusterSchema, configSchema, listenerSchema, pluginSchema, routeSchema } from '../../gateway/config/schema.js';

const minimal = { listeners: [{ name: 'public', port: 8080 }] };

function issues(doc: unknown): Array<[string, string]> {
  const result = configSchema.safeParse(doc);
  if (result.success) return [];
  return result.error.issues.map((i) => [i.path.join('.'), i.message]);
}

describe('the configuration schema', () => {
  it('fills every top-level default of the contract from a document with only a listener', () => {
    expect(configSchema.parse(minimal)).toEqual({
      node: { id: 'edge-1', cluster: 'edge' },
      listeners: [{
        name: 'public', address: '0.0.0.0', port: 8080, normalizePath: true, mergeSlashes: true, escapedSlashes: 'keep',
        headersTimeoutMs: 10_000, requestTimeoutMs: 300_000, bodyTimeoutMs: 60_000, idleTimeoutMs: 65_000, maxRequestHeaders: 100, maxConnections: 10_000,
        http2: { enabled: true, cleartext: false, maxConcurrentStreams: 100, maxHeaderListSize: 65536, maxPrematureResets: 100 },
      }],
      admin: { address: '127.0.0.1', port: 9901, tokenEnv: 'EDGE_GATEWAY_ADMIN_TOKEN' },
      modules: { cacheDir: '.edge-gateway/modules', trustedKeys: [], requireSignature: false },
      sharedState: { backend: 'memory', maxBytesPerVm: 16 * 1024 * 1024 },
      log: { level: 'info' },
      workers: 1,
      drainDelayMs: 0,
      drainTimeoutMs: 10000,
      clusters: [],
      functions: [],
      plugins: [],
      services: [],
      routes: [],
    });
  });

  it('fills the defaults inside partly given sections', () => {
    const config = configSchema.parse({ ...minimal, node: { id: 'n1' }, admin: { port: 0 }, log: {} });
    expect(config.node).toEqual({ id: 'n1', cluster: 'edge' });
    expect(config.admin).toEqual({ address: '127.0.0.1', port: 0, tokenEnv: 'EDGE_GATEWAY_ADMIN_TOKEN' });
    expect(config.log).toEqual({ level: 'info' });
  });

  it('fills every default of a listener, a cluster, a plugin and a route', () => {
    expect(listenerSchema.parse({ name: 'l', port: 0 })).toEqual({
      name: 'l', address: '0.0.0.0', port: 0, normalizePath: true, mergeSlashes: true, escapedSlashes: 'keep',
      headersTimeoutMs: 10_000, requestTimeoutMs: 300_000, bodyTimeoutMs: 60_000, idleTimeoutMs: 65_000, maxRequestHeaders: 100, maxConnections: 10_000,
      http2: { enabled: true, cleartext: false, maxConcurrentStreams: 100, maxHeaderListSize: 65536, maxPrematureResets: 100 },
    });
    expect(clusterSchema.parse({ name: 'c', endpoints: ['http://127.0.0.1:9000'] })).toEqual({
      name: 'c', endpoints: ['http://127.0.0.1:9000'], connectTimeoutMs: 2000, timeoutMs: 15000, maxConnections: 128,
      maxPendingRequests: 1024, queueTimeoutMs: 5000, http2: false, retryBudget: { percent: 20, minConcurrency: 3 },
    });
    expect(pluginSchema.parse({ name: 'p', module: 'x.wasm' })).toEqual({
      name: 'p', module: 'x.wasm', rootId: '', vmId: '', configuration: '', vmConfiguration: '', environment: {}, failurePolicy: 'closed',
      limits: { cpuMs: 50, startCpuMs: 1000, memoryMb: 128 },
    });
    expect(routeSchema.parse({ name: 'r', cluster: 'c' })).toEqual({
      name: 'r', match: {}, cluster: 'c', filters: [], bodyLimitBytes: 1024 * 1024,
    });
  });

  it('keeps given values instead of the defaults', () => {
    const config = configSchema.parse({
      ...minimal,
      sharedState: { backend: 'redis', url: 'redis://127.0.0.1:6379' },
      log: { level: 'debug' },
      drainTimeoutMs: 250,
      clusters: [{ name: 'c', endpoints: ['https://api.example.com'], connectTimeoutMs: 5, timeoutMs: 6, maxConnections: 7, http2: true }],
      routes: [{ name: 'r', cluster: 'c', bodyLimitBytes: 10, timeoutMs: 99, match: { pathPrefix: '/api', methods: ['GET'] } }],
    });
    expect(config.sharedState).toEqual({ backend: 'redis', url: 'redis://127.0.0.1:6379', cluster: false, prefix: 'edge:', queueClaimIdleMs: 60_000, readyWithRedisOnly: false, maxBytesPerVm: 16 * 1024 * 1024 });
    expect(configSchema.parse({ ...minimal, sharedState: { backend: 'memory', maxBytesPerVm: 65536 } }).sharedState)
      .toEqual({ backend: 'memory', maxBytesPerVm: 65536 });
    expect(config.log.level).toBe('debug');
    expect(config.drainTimeoutMs).toBe(250);
    expect(config.clusters[0]).toEqual({
      name: 'c', endpoints: ['https://api.example.com'], connectTimeoutMs: 5, timeoutMs: 6, maxConnections: 7,
      maxPendingRequests: 1024, queueTimeoutMs: 5000, http2: true, retryBudget: { percent: 20, minConcurrency: 3 },
    });
    expect(config.routes[0]).toEqual({
      name: 'r', cluster: 'c', filters: [], bodyLimitBytes: 10, timeoutMs: 99, match: { pathPrefix: '/api', methods: ['GET'] },
    });
  });

  it('refuses a listener whose whole-request timeout is shorter than its headers timeout, unless it is 0 (off)', () => {
    const listener = (extra: Record<string, unknown>) => ({ listeners: [{ name: 'l', port: 0, ...extra }] });
    expect(issues(listener({ headersTimeoutMs: 5000, requestTimeoutMs: 1000 })))
      .toEqual([['listeners.0.requestTimeoutMs', 'must be at least headersTimeoutMs (or 0 to turn it off)']]);
    expect(issues(listener({ headersTimeoutMs: 5000, requestTimeoutMs: 0, bodyTimeoutMs: 0 }))).toEqual([]);
    expect(issues(listener({ escapedSlashes: 'drop' }))[0][0]).toBe('listeners.0.escapedSlashes');
  });

  it('keeps configuration and vmConfiguration as given: an object as an object, a string as the same string', () => {
    const plugin = pluginSchema.parse({
      name: 'p', module: 'x.wasm', configuration: { add: { 'x-edge': '1' } }, vmConfiguration: '  raw text, kept as is\n',
    });
    expect(plugin.configuration).toEqual({ add: { 'x-edge': '1' } });
    expect(plugin.vmConfiguration).toBe('  raw text, kept as is\n');
  });

  it('rejects a configuration that is neither a string nor an object', () => {
    expect(issues({ ...minimal, plugins: [{ name: 'p', module: 'x.wasm', configuration: 5, vmConfiguration: true }] })).toEqual([
      ['plugins.0.configuration', 'must be a string (passed as is) or an object (passed as JSON text)'],
      ['plugins.0.vmConfiguration', 'must be a string (passed as is) or an object (passed as JSON text)'],
    ]);
  });

  it('accepts a module as a path, as { file, sha256 } or as { url, sha256 } and rejects anything else', () => {
    const sha256 = 'ab'.repeat(32);
    const union = 'must be a file path, { file, sha256?, watch?, signature? }, { url, sha256, signature? } (the pin is required for a URL) or { redis: "name:channel" | sha256 }';
    expect(pluginSchema.parse({ name: 'p', module: { file: 'x.wasm', sha256 } }).module).toEqual({ file: 'x.wasm', sha256 });
    expect(pluginSchema.parse({ name: 'p', module: { url: 'https://h/x.wasm', sha256 } }).module).toEqual({ url: 'https://h/x.wasm', sha256 });
    expect(issues({ ...minimal, plugins: [{ name: 'p', module: 7 }, { name: 'q', module: { file: 'x.wasm', sha256: 'abc' } }] })).toEqual([
      ['plugins.0.module', union],
      ['plugins.1.module.sha256', 'must be 64 hex digits'],
    ]);
    expect(issues({ ...minimal, plugins: [{ name: 'p', module: { url: 'https://h/x.wasm' } }] })).toEqual([['plugins.0.module', union]]);
  });

  it('rejects unknown keys at every level', () => {
    const result = configSchema.safeParse({
      listeners: [{ name: 'l', port: 1, tcp: true }],
      admin: { bind: 'x' },
      clusters: [{ name: 'c', endpoints: ['http://a'], retries: 3 }],
      plugins: [{ name: 'p', module: 'x.wasm', root_id: 'r' }],
      routes: [{ name: 'r', cluster: 'c', match: { prefix: '/', headers: [{ name: 'h', exact: 'v', suffix: 'x' }] } }],
      extra: 1,
    });
    expect(result.success).toBe(false);
    expect(result.error!.issues.map((i) => [i.path.join('.'), i.code === 'unrecognized_keys' ? i.keys : []])).toEqual([
      ['listeners.0', ['tcp']],
      ['admin', ['bind']],
      ['clusters.0', ['retries']],
      ['plugins.0', ['root_id']],
      ['routes.0.match.headers.0', ['suffix']],
      ['routes.0.match', ['prefix']],
      ['', ['extra']],
    ]);
  });

  it('checks values: names, ports, endpoints, enums, timeouts, paths and the redis URL', () => {
    expect(issues({
      listeners: [{ name: 'has space', port: 70000 }],
      sharedState: { backend: 'redis', url: 'http://127.0.0.1:6379' },
      log: { level: 'verbose' },
      drainTimeoutMs: 0,
      clusters: [{ name: 'c', endpoints: ['http://127.0.0.1:9000/api'] }, { name: 'd', endpoints: [] }],
      plugins: [{ name: 'p', module: 'x.wasm', failurePolicy: 'ignore' }],
      routes: [{ name: 'r', cluster: 'c', match: { pathPrefix: 'api' }, bodyLimitBytes: 1.5 }],
    })).toEqual([
      ['listeners.0.name', 'use letters, digits, _ . : -'],
      ['listeners.0.port', 'Too big: expected number to be <=65535'],
      ['sharedState.url', 'must be a redis:// or rediss:// URL'],
      ['log.level', 'Invalid option: expected one of "trace"|"debug"|"info"|"warn"|"error"'],
      ['drainTimeoutMs', 'Too small: expected number to be >0'],
      ['clusters.0.endpoints.0', 'must be an http(s) origin such as "http://127.0.0.1:9000" (no path)'],
      ['clusters.1.endpoints', 'Too small: expected array to have >=1 items'],
      ['plugins.0.failurePolicy', 'Invalid option: expected one of "closed"|"open"|"reload"'],
      ['routes.0.match.pathPrefix', 'must start with "/"'],
      ['routes.0.bodyLimitBytes', 'Invalid input: expected int, received number'],
    ]);
  });

  it('requires at least one listener', () => {
    expect(issues({ listeners: [] })).toEqual([['listeners', 'Too small: expected array to have >=1 items']]);
    expect(issues({})).toEqual([['listeners', 'Invalid input: expected array, received undefined']]);
  });
});

describe('the retry policy of a route', () => {
  const route = (retry: unknown) => ({ ...minimal, clusters: [{ name: 'c', endpoints: ['http://a'] }], routes: [{ name: 'r', cluster: 'c', retry }] });

  it('takes Envoy\'s defaults from {} and none when absent', () => {
    expect(routeSchema.parse({ name: 'r', cluster: 'c', retry: {} }).retry).toEqual({
      retryOn: ['connect-failure', 'reset', 'gateway-error'], retriableStatusCodes: [], numRetries: 1,
      backoff: { baseMs: 25 }, bufferBytes: 65536,
    });
    expect(routeSchema.parse({ name: 'r', cluster: 'c' }).retry).toBeUndefined();
    expect(clusterSchema.parse({ name: 'c', endpoints: ['http://a'], retryBudget: { percent: 0 } }).retryBudget).toEqual({ percent: 0, minConcurrency: 3 });
  });

  it('names the field of a policy that cannot work', () => {
    expect(issues(route({ retryOn: ['retriable-status-codes'] }))).toEqual([['routes.0.retry.retriableStatusCodes', 'retriable-status-codes needs retriableStatusCodes']]);
    expect(issues(route({ retriableStatusCodes: [503] }))).toEqual([['routes.0.retry.retriableStatusCodes', 'are used only when retryOn has retriable-status-codes']]);
    expect(issues(route({ backoff: { baseMs: 100, maxMs: 50 } }))).toEqual([['routes.0.retry.backoff.maxMs', 'must be at least baseMs']]);
    expect(issues(route({ retryOn: ['4xx'] }))[0][0]).toBe('routes.0.retry.retryOn.0');
    expect(issues(route({ retryOn: [] }))[0][0]).toBe('routes.0.retry.retryOn');
    expect(issues({ ...minimal, clusters: [{ name: 'c', endpoints: ['http://a'], retryBudget: { percent: 120 } }] })[0][0]).toBe('clusters.0.retryBudget.percent');
  });
});
