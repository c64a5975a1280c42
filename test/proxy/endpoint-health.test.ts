import { afterEach, describe, expect, it } from 'vitest';
import { clusterSchema, outlierDetectionSchema } from '../../gateway/config/schema.js';
import { ClusterHealth } from '../../gateway/proxy/cluster-health.js';
import { ejectionMs, type CheckResult } from '../../gateway/proxy/endpoint-health.js';
import { expectedStatus } from '../../gateway/proxy/health-check.js';
import { captureLog, type CapturedLog } from '../helpers/log-capture.js';

const ORIGINS = ['http://127.0.0.1:1', 'http://127.0.0.1:2', 'http://127.0.0.1:3', 'http://127.0.0.1:4'];

const healths: ClusterHealth[] = [];
afterEach(() => { for (const h of healths.splice(0)) h.stop(); });

/** A cluster's health with no probes running: results are fed by hand. */
function health(doc: Record<string, unknown>, endpoints = 2, log: CapturedLog = captureLog()): ClusterHealth {
  // Not started: no probe runs.
  const h = new ClusterHealth(clusterSchema.parse({ name: 'c', endpoints: ORIGINS.slice(0, endpoints), ...doc }), log.logger);
  healths.push(h);
  return h;
}

const results = (sequence: string): CheckResult[] => [...sequence].map((c) => (c === '+' ? 'success' : 'failure'));

describe('active health-check thresholds', () => {
  it('takes an endpoint out after unhealthyThreshold failures in a row and back after healthyThreshold passes', () => {
    const h = health({ healthCheck: { healthyThreshold: 2, unhealthyThreshold: 3 } });
    const e = h.endpoints[0];
    const states: boolean[] = [];
    for (const r of results('---+-++')) {
      e.checked(r, r === 'success' ? 'status 200' : 'status 503');
      states.push(e.available);
    }
    expect(states).toEqual([true, true, false, false, false, false, true]);
    expect(e.checks).toEqual({ success: 3, failure: 4, network_failure: 0, timeout: 0 });
    expect(h.down).toBe(0);
  });

  it('never changes state on a flapping endpoint below the thresholds', () => {
    const h = health({ healthCheck: { healthyThreshold: 2, unhealthyThreshold: 2 } });
    const e = h.endpoints[0];
    for (const r of results('-+-+-+-+-+-+')) e.checked(r, 'x');
    expect(e.available).toBe(true);
    for (const r of results('--')) e.checked(r, 'x');
    expect(e.available).toBe(false);
    for (const r of results('+-+-+-+-+-')) e.checked(r, 'x');
    expect(e.available).toBe(false);
    expect(h.down).toBe(1);
  });

  it('logs one line per change, with the cluster, the endpoint and why', async () => {
    const log = captureLog();
    const h = health({ healthCheck: { healthyThreshold: 1, unhealthyThreshold: 2 } }, 2, log);
    const e = h.endpoints[1];
    e.checked('network_failure', 'ECONNREFUSED');
    e.checked('timeout', 'no answer within 100 ms');
    e.checked('timeout', 'no answer within 100 ms');
    e.checked('success', 'status 200');
    await log.flushed();
    expect(log.lines.map((l) => [l.level, l.msg, l.cluster, l.endpoint, l.reason])).toEqual([
      ['warn', 'upstream endpoint unhealthy', 'c', ORIGINS[1], '2 health checks failed in a row (last: no answer within 100 ms)'],
      ['info', 'upstream endpoint healthy', 'c', ORIGINS[1], '1 health checks passed in a row'],
    ]);
  });

  it('passes the statuses of expectedStatuses: single statuses and [start, end) ranges', () => {
    const expected = clusterSchema.parse({ name: 'c', endpoints: [ORIGINS[0]], healthCheck: {} }).healthCheck!.expectedStatuses;
    expect([199, 200, 301, 399, 400, 503].map((s) => expectedStatus(expected, s))).toEqual([false, true, true, true, false, false]);
    const own = [204, { start: 500, end: 503 }];
    expect([200, 204, 499, 500, 502, 503].map((s) => expectedStatus(own, s))).toEqual([false, true, false, true, true, false]);
  });
});

describe('outlier ejection', () => {
  it('lasts baseEjectionTimeMs times the number of ejections, at most maxEjectionTimeMs', () => {
    const o = outlierDetectionSchema.parse({ baseEjectionTimeMs: 1000, maxEjectionTimeMs: 2500 });
    expect([1, 2, 3, 4].map((n) => ejectionMs(o, n))).toEqual([1000, 2000, 2500, 2500]);
    // A base above the max: the base wins (Envoy).
    expect(ejectionMs(outlierDetectionSchema.parse({ baseEjectionTimeMs: 400_000 }), 1)).toBe(400_000);
  });

  it('ejects after consecutive5xx answers in a row, a success in between starting the count again', () => {
    const h = health({ outlierDetection: { consecutive5xx: 3, consecutiveGatewayFailure: 0 } });
    const e = h.endpoints[0];
    for (const status of [500, 500, 200, 500, 500]) e.observe(status);
    expect(e.ejected).toBe(false);
    e.observe(501);
    expect(e.ejected).toBe(true);
    expect(e.available).toBe(false);
    expect(e.ejections).toBe(1);
    expect(e.ejectedUntil - Date.now()).toBeGreaterThan(29_000);
  });

  it('counts connect failures, resets and timeouts as gateway failures, but not the gateway\'s own aborts', () => {
    const h = health({ outlierDetection: { consecutive5xx: 0, consecutiveGatewayFailure: 3 } });
    const e = h.endpoints[0];
    for (const code of ['UND_ERR_ABORTED', 'UND_ERR_DESTROYED', 'queue_timeout', 'cluster_overflow']) e.observeFailure(code);
    expect(e.consecutiveGatewayFailures).toBe(0);
    e.observeFailure('ECONNREFUSED');
    e.observe(503);
    expect(e.consecutiveGatewayFailures).toBe(2);
    e.observe(500);
    expect(e.consecutiveGatewayFailures).toBe(0);
    e.observeFailure('UND_ERR_CONNECT_TIMEOUT');
    e.observeFailure('ECONNRESET');
    e.observeFailure('UND_ERR_HEADERS_TIMEOUT');
    expect(e.ejected).toBe(true);
  });

  it('never ejects more than maxEjectionPercent of the endpoints, and always leaves one', () => {
    const fail = (h: ClusterHealth): number => {
      for (const e of h.endpoints) for (let i = 0; i < 5; i++) e.observe(500);
      return h.endpoints.filter((e) => e.ejected).length;
    };
    expect(fail(health({ outlierDetection: { maxEjectionPercent: 100 } }, 1))).toBe(0);
    expect(fail(health({ outlierDetection: { maxEjectionPercent: 100 } }, 2))).toBe(1);
    expect(fail(health({ outlierDetection: { maxEjectionPercent: 50 } }, 4))).toBe(2);
    expect(fail(health({ outlierDetection: { maxEjectionPercent: 50 } }, 3))).toBe(1);
    // Rounded down, but one may always go (Envoy).
    expect(fail(health({ outlierDetection: { maxEjectionPercent: 10 } }, 4))).toBe(1);
  });

  it('enters panic mode when no endpoint is in service, and says so once', async () => {
    const log = captureLog();
    const h = health({ healthCheck: { unhealthyThreshold: 1, healthyThreshold: 1 } }, 2, log);
    h.endpoints[0].checked('failure', 'status 503');
    expect(h.inPanic).toBe(false);
    h.endpoints[1].checked('failure', 'status 503');
    expect(h.inPanic).toBe(true);
    h.endpoints[1].checked('failure', 'status 503');
    h.endpoints[0].checked('success', 'status 200');
    expect(h.inPanic).toBe(false);
    await log.flushed();
    expect(log.lines.map((l) => l.msg).filter((m) => String(m).includes('panic'))).toEqual([
      'upstream cluster in panic mode: no endpoint is in service, routing to all of them',
      'upstream cluster out of panic mode',
    ]);
  });
});
