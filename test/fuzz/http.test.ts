/**
 * Thousands of malformed and adversarial HTTP/1 requests on raw sockets against a real gateway
 * process (test/helpers/http-fuzz-cases.ts for the families): no crash, every invalid request a
 * 4xx or a close, a valid request on a fresh connection after each answered 200, and nothing
 * hidden, denied or unrouted reaching the upstream. Bounded in count and time (~30 s here);
 * `npx tsx bench/fuzz-http.ts [count] [seed]` runs the long version.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateCases } from '../helpers/http-fuzz-cases.js';
import { finalViolations, reachesAdmin, runFuzz, startFuzzTarget, type FuzzTarget } from '../helpers/http-fuzz-run.js';

const COUNT = 4000;
const SEED = 8;
const BUDGET_MS = 40_000;

describe('HTTP fuzzing on raw sockets', () => {
  let target: FuzzTarget;
  beforeAll(async () => {
    target = await startFuzzTarget();
  });
  afterAll(async () => {
    await target.stop();
  });

  it('reads a path the way an upstream would when it checks for a walk around the deny filter', () => {
    for (const url of ['/admin', '//admin', '/x/../admin', '/%61dmin', '/%2e%2e/admin', '/a\\..\\admin']) expect([url, reachesAdmin(url)]).toEqual([url, true]);
    for (const url of ['/x%2F..%2Fadmin', '/adm', '/ok', '/ADMIN']) expect([url, reachesAdmin(url)]).toEqual([url, false]);
  });

  it('survives thousands of malformed requests with 4xx answers or closes, no desync, and nothing smuggled upstream', async () => {
    const cases = generateCases(SEED, COUNT);
    const report = await runFuzz(target, cases, 16, Date.now() + BUDGET_MS);
    // The last access lines and upstream records land a moment after the last answer.
    await new Promise((r) => setTimeout(r, 500));
    expect(report.ran).toBeGreaterThanOrEqual(1000);
    expect(report.violations.slice(0, 10)).toEqual([]);
    expect(finalViolations(target).slice(0, 10)).toEqual([]);
    // Every family ran, and the run was not all refusals: valid requests in it were served.
    expect(Object.keys(report.families).sort()).toEqual(
      ['chunked', 'crlfInjection', 'denyWalk', 'headerSyntax', 'hugeHead', 'mutation', 'pipelining', 'requestLine', 'smuggling']);
    expect(report.statuses['400']).toBeGreaterThan(report.ran / 3);
    expect(report.statuses['200']).toBeGreaterThan(100);
    expect(report.statuses['403']).toBeGreaterThan(50);
    const health = await fetch(`http://127.0.0.1:${target.adminPort}/healthz`);
    expect(health.status).toBe(200);
    expect(target.alive()).toBe(true);
  }, 90_000);
});
