/**
 * The sandbox end to end, in a real `edge-gateway start` process: a filter that loops for ever in
 * on_request_headers costs its own request a fail-closed 503 within its CPU budget (plus a
 * margin), while another route and the admin /healthz keep answering; a filter that loops in
 * on_vm_start stops `start` with a clear error naming the plugin and the start-up budget, and
 * the same plugin in a SIGHUP reload is rejected while the old generation keeps serving; a
 * call the process spent stopped (SIGSTOP) past its budget is not trapped.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startUpstream, wasmFile, type Upstream } from './helpers/gateway.js';
import { GATEWAY_TIME_SCALE } from './helpers/gateway-command.js';
import { GatewayProcess } from './helpers/gateway-process.js';
import { guestWat } from './helpers/wat.js';

const dir = mkdtempSync(join(tmpdir(), 'edge-gw-sandbox-'));
const CPU_MS = 200;
// The machine running the suite is shared with other work: generous, but far below "for ever".
const MARGIN_MS = 1500;

const LOOPER = (callback: 'proxy_on_request_headers' | 'proxy_on_vm_start'): string => guestWat({ body: `
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "${callback}") (param i32 i32 ${callback === 'proxy_on_request_headers' ? 'i32' : ''}) (result i32)
    (loop $spin (br $spin))
    (i32.const 0))` });

/** Writes `config` (YAML text) and spawns a gateway on it. */
function launch(config: string, file = join(dir, `config-${Math.random().toString(36).slice(2)}.yaml`)): GatewayProcess {
  writeFileSync(file, config);
  return GatewayProcess.launch(file);
}

/** A GET on its own connection; resolves with the status and how long the answer took. */
function timedGet(url: string): Promise<{ status: number; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    request(url, { agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, ms: performance.now() - t0 }));
    }).on('error', reject).end();
  });
}

function yaml(upstream: string, module: string): string {
  return `listeners:
  - { name: public, address: 127.0.0.1, port: 0 }
admin: { address: 127.0.0.1, port: 0 }
log: { level: info }
clusters:
  - { name: backend, endpoints: [ "${upstream}" ] }
plugins:
  - name: looper
    module: ${module}
    failurePolicy: closed
    limits: { cpuMs: ${CPU_MS}, startCpuMs: ${CPU_MS} }
routes:
  - { name: loop, match: { pathPrefix: /loop }, cluster: backend, filters: [ looper ] }
  - { name: api, match: { pathPrefix: /api }, cluster: backend }
`;
}

describe('the sandbox in a running gateway', () => {
  let upstream: Upstream;
  const running: GatewayProcess[] = [];
  beforeAll(async () => { upstream = await startUpstream(); });
  afterEach(async () => {
    for (const gw of running.splice(0)) {
      await gw.stop();
    }
  });
  afterAll(async () => {
    await upstream.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers a looping filter\'s request with 503 within its budget while another route and /healthz keep answering', async () => {
    const gw = launch(yaml(upstream.url, wasmFile(LOOPER('proxy_on_request_headers'), 'looper')));
    running.push(gw);
    const { url, adminUrl } = await gw.started();
    expect((await timedGet(`${url}/api/warm`)).status).toBe(200);
    const looping = timedGet(`${url}/loop/1`);
    await new Promise((r) => setTimeout(r, 30)); // the gateway is inside the loop now
    const [loop, api, health] = await Promise.all([looping, timedGet(`${url}/api/during`), timedGet(`${adminUrl}/healthz`)]);
    expect(loop.status).toBe(503);
    expect(loop.ms).toBeGreaterThanOrEqual(CPU_MS);
    expect(loop.ms).toBeLessThan(CPU_MS + MARGIN_MS);
    expect(api.status).toBe(200);
    expect(api.ms).toBeLessThan(CPU_MS + MARGIN_MS);
    expect(health.status).toBe(200);
    expect(health.ms).toBeLessThan(CPU_MS + MARGIN_MS);
    const failed = gw.lines.find((l) => l.plugin === 'looper' && l.code === 'GW_ERR_ABI_BUDGET');
    expect(failed?.msg).toContain('proxy_on_request_headers ran past its CPU budget: limits.cpuMs = 200 ms');
    // The process is alive and serving after the trap.
    expect((await timedGet(`${url}/api/after`)).status).toBe(200);
  });

  it('refuses to start when a plugin loops in on_vm_start: exit 2 (a plugin error), the error names the plugin and startCpuMs', async () => {
    const gw = launch(yaml(upstream.url, wasmFile(LOOPER('proxy_on_vm_start'), 'looper-start')));
    running.push(gw);
    const code = await Promise.race([gw.exited.then((e) => e.code), new Promise((r) => setTimeout(() => r('still running'), 20_000 * GATEWAY_TIME_SCALE))]);
    expect(code).toBe(2);
    expect(gw.stderr).toContain('GW_ERR_ABI_BUDGET');
    expect(gw.stderr).toContain('plugin looper');
    expect(gw.stderr).toContain('proxy_on_vm_start ran past its CPU budget: limits.startCpuMs = 200 ms');
  });

  it('rejects on SIGHUP a configuration whose plugin loops in on_vm_start, and keeps serving the old one', async () => {
    const file = join(dir, 'reload.yaml');
    const good = yaml(upstream.url, wasmFile(guestWat({ body: '(func (export "proxy_on_context_create") (param i32 i32))' }), 'quiet'));
    const gw = launch(good, file);
    running.push(gw);
    const { url } = await gw.started();
    expect((await timedGet(`${url}/loop/before`)).status).toBe(200);
    writeFileSync(file, yaml(upstream.url, wasmFile(LOOPER('proxy_on_vm_start'), 'looper-reload')));
    gw.signal('SIGHUP');
    const deadline = Date.now() + 20_000;
    let rejected: Record<string, unknown> | undefined;
    while (rejected === undefined && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      rejected = gw.lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('reload rejected'));
    }
    expect(String(rejected?.msg)).toContain('proxy_on_vm_start ran past its CPU budget');
    expect((await timedGet(`${url}/loop/after`)).status).toBe(200);
    expect(gw.alive()).toBe(true);
  });

  it('does not trap a call the kernel took the process off the CPU for: a filter stopped past its budget by SIGSTOP still answers 200', async () => {
    // on_response_headers spins 250 ms of wall time (under the 400 ms budget). 40 ms after the
    // upstream answers, the gateway is inside the spin; SIGSTOP holds it 600 ms, so the call's
    // wall time passes the budget while it used some 250 ms of CPU. Judged by the wall clock alone
    // the call trapped and the request got 503.
    const spinner = guestWat({
      imports: '(import "wasi_snapshot_preview1" "clock_time_get" (func $now (param i32 i64 i32) (result i32)))',
      body: `
      (func (export "proxy_on_context_create") (param i32 i32))
      (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32) (local $until i64)
        (drop (call $now (i32.const 1) (i64.const 0) (i32.const 0x20)))
        (local.set $until (i64.add (i64.load (i32.const 0x20)) (i64.const 250000000)))
        (loop $spin
          (drop (call $now (i32.const 1) (i64.const 0) (i32.const 0x20)))
          (br_if $spin (i64.lt_u (i64.load (i32.const 0x20)) (local.get $until))))
        (i32.const 0))` });
    let stopped = false;
    const gwRef: { gw?: GatewayProcess } = {};
    const slow = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-length': '2' });
      res.end('ok');
      setTimeout(() => {
        gwRef.gw!.signal('SIGSTOP');
        stopped = true;
        setTimeout(() => gwRef.gw!.signal('SIGCONT'), 600);
      }, 40);
    });
    try {
      const gw = launch(yaml(slow.url, wasmFile(spinner, 'spinner')).replace(`cpuMs: ${CPU_MS}, startCpuMs: ${CPU_MS}`, 'cpuMs: 400, startCpuMs: 400'));
      gwRef.gw = gw;
      running.push(gw);
      const { url } = await gw.started();
      const answer = await timedGet(`${url}/loop/stopped`);
      expect(stopped).toBe(true);
      expect(answer.ms).toBeGreaterThanOrEqual(600); // the stop held the call (the spin ends on waking: its wall time has passed)
      expect(answer.status).toBe(200);
      expect(gw.lines.filter((l) => l.code === 'GW_ERR_ABI_BUDGET')).toEqual([]);
    } finally {
      await slow.close();
    }
  });
});
