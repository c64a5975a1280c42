import { afterEach, describe, expect, it } from 'vitest';
import type { ServerResponse } from 'node:http';
import { sharedDataOf } from '../helpers/filter-gateway.js';
import { startGateway, startUpstream, wasmFile, type TestGateway } from '../helpers/gateway.js';
import { Guest, guestLines, send, waitFor } from '../helpers/guests.js';
import { guestWat } from '../helpers/wat.js';

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup.length = 0;
});

/** Pages (64 KiB) the guest grows its memory by on every request, and writes to. */
const GROW_PAGES = 4;

/**
 * Grows its memory by GROW_PAGES in on_request_headers and fills the new pages; answers with
 * x-vm-pages (its memory size in pages when the response passes) and x-vm-served (requests this
 * VM instance has seen), so a client can tell which VM served it.
 */
function growingFilter(): string {
  const g = new Guest();
  return g.build({
    extra: '(global $served (mut i32) (i32.const 0))',
    on: {
      proxy_on_vm_start: true,
      proxy_on_configure: true,
      proxy_on_done: true,
      proxy_on_delete: true,
      proxy_on_request_headers: `
        (global.set $served (i32.add (global.get $served) (i32.const 1)))
        (local.set $t (memory.grow (i32.const ${GROW_PAGES})))
        (if (i32.ge_s (local.get $t) (i32.const 0))
          (then (memory.fill (i32.shl (local.get $t) (i32.const 16)) (i32.const 0x5a) (i32.const ${GROW_PAGES * 65536}))))
        (i32.const 0)`,
      proxy_on_response_headers: `
        (call $add_header (i32.const 2) ${g.lit('x-vm-pages')} (i32.const 0xA000) (call $itoa (memory.size) (i32.const 0xA000)))
        (call $add_header (i32.const 2) ${g.lit('x-vm-served')} (i32.const 0xA000) (call $itoa (global.get $served) (i32.const 0xA000)))
        (i32.const 0)`,
    },
  });
}

/** Like growingFilter's growth, but on_vm_start fails while shared data holds "no-more-vms". */
function refusingFilter(): string {
  return guestWat({
    imports: '(import "env" "proxy_get_shared_data" (func $get (param i32 i32 i32 i32 i32) (result i32)))',
    body: `
  (data (i32.const 0x100) "no-more-vms")
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
    (i32.ne (call $get (i32.const 0x100) (i32.const 11) (i32.const 0x10) (i32.const 0x14) (i32.const 0x18)) (i32.const 0)))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (memory.grow (i32.const ${GROW_PAGES})))
    (i32.const 0))`,
  });
}

/**
 * Grows like growingFilter, pauses /pause for good (Stop, never continued), and ticks every 20 ms;
 * a tick traps when shared data holds "trap-now" and the VM is past 32 pages (only the old VM).
 */
function pausingFilter(): string {
  return guestWat({
    imports: `
  (import "env" "proxy_get_shared_data" (func $get (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_value" (func $header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_tick_period_milliseconds" (func $tick (param i32) (result i32)))`,
    body: `
  (data (i32.const 0x100) "trap-now")
  (data (i32.const 0x110) ":path")
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (drop (call $tick (i32.const 20))) (i32.const 1))
  (func (export "proxy_on_tick") (param i32)
    (if (i32.and (i32.eqz (call $get (i32.const 0x100) (i32.const 8) (i32.const 0x10) (i32.const 0x14) (i32.const 0x18)))
                 (i32.gt_u (memory.size) (i32.const 32)))
      (then unreachable)))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (memory.grow (i32.const ${GROW_PAGES})))
    (drop (call $header (i32.const 0) (i32.const 0x110) (i32.const 5) (i32.const 0x20) (i32.const 0x24)))
    (i32.eq (i32.load8_u (i32.add (i32.load (i32.const 0x20)) (i32.const 1))) (i32.const 0x70)))`,
  });
}

interface PluginInfo { name: string; healthy: boolean; recycles: number }

async function metric(gw: TestGateway, name: string): Promise<number> {
  const text = await (await fetch(`${gw.adminUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

describe('VM recycling behind a real gateway', () => {
  it('moves new streams to a fresh VM past recycleMemoryMb, finishes in-flight streams on the old one, then ends it', async () => {
    let releaseSlow: (() => void) | null = null;
    const upstream = await startUpstream((req, res: ServerResponse) => {
      const answer = (): void => { res.writeHead(200, { 'content-length': 2 }); res.end('ok'); };
      if (req.url === '/slow') releaseSlow = answer;
      else answer();
    });
    cleanup.push(upstream.close);
    // 2 MiB = 32 pages: passed once the guest has grown 8 times from its 2 pages.
    const gw = await startGateway({
      clusters: [{ name: 'backend', endpoints: [upstream.url] }],
      plugins: [{ name: 'grow', module: wasmFile(growingFilter(), 'grow'), limits: { memoryMb: 16, recycleMemoryMb: 2 } }],
      routes: [{ name: 'all', cluster: 'backend', filters: ['grow'] }],
    });
    cleanup.push(gw.close);
    cleanup.push(async () => { (releaseSlow as (() => void) | null)?.(); }); // a failed test must not hold the drain
    const pool = gw.gateway.pool;
    const first = pool.vms()[0];

    // A stream that stays in flight on the first VM across the recycle.
    const slow = send(`${gw.url}/slow`);
    await waitFor(() => releaseSlow !== null, 'the slow request at the upstream');

    // Concurrent traffic through the recycle: 3 clients, 4 requests each.
    const statuses: number[] = [];
    await Promise.all([0, 1, 2].map(async () => {
      for (let i = 0; i < 4; i++) statuses.push((await send(`${gw.url}/fast`)).status);
    }));
    expect(statuses).toEqual(new Array(12).fill(200));
    expect(await metric(gw, 'edge_gateway_wasm_vm_recycles_total')).toBe(1);
    const plugins = (await (await fetch(`${gw.adminUrl}/plugins`)).json()) as PluginInfo[];
    expect(plugins.map((p) => [p.name, p.healthy, p.recycles])).toEqual([['grow', true, 1]]);
    expect(gw.logs.some((l) => typeof l.msg === 'string' && l.msg.startsWith('VM of grow recycled: its memory'))).toBe(true);

    // The old VM still serves the slow stream; new streams run on the fresh one.
    const fresh = pool.vms().filter((vm) => vm !== first);
    expect(fresh).toHaveLength(1);
    expect(pool.vms()).toContain(first);
    const after = await send(`${gw.url}/fast`);
    expect(Number(after.headers['x-vm-pages'])).toBeLessThan(32);
    const doneBefore = guestLines(gw.logs).filter((l) => l === 'grow: ctx=1 cb=done').length;
    expect(doneBefore).toBe(0);

    const release = releaseSlow!;
    releaseSlow = null;
    release();
    const slowReply = await slow;
    expect(slowReply.status).toBe(200);
    expect(Number(slowReply.headers['x-vm-pages'])).toBeGreaterThan(32);
    // Its last stream gone, the old VM has ended: its root got on_done and on_delete, the pool let it go.
    await waitFor(() => !pool.vms().includes(first), 'the old VM to be dropped');
    expect(pool.vms()).toEqual(fresh);
    const lines = guestLines(gw.logs);
    expect(lines.filter((l) => l === 'grow: ctx=1 cb=vm_start' || l === 'grow: ctx=1 cb=configure')).toHaveLength(4);
    expect(lines.filter((l) => l === 'grow: ctx=1 cb=done' || l === 'grow: ctx=1 cb=delete')).toEqual(['grow: ctx=1 cb=done', 'grow: ctx=1 cb=delete']);
    expect(first.contexts.size).toBe(0);
  });

  it('keeps the old VM serving and logs when the fresh VM fails to start', async () => {
    const upstream = await startUpstream();
    cleanup.push(upstream.close);
    const gw = await startGateway({
      clusters: [{ name: 'backend', endpoints: [upstream.url] }],
      plugins: [{ name: 'refuse', vmId: 'r', module: wasmFile(refusingFilter(), 'refuse'), limits: { memoryMb: 16, recycleMemoryMb: 1 } }],
      routes: [{ name: 'all', cluster: 'backend', filters: ['refuse'] }],
    });
    cleanup.push(gw.close);
    sharedDataOf(gw).set('r', 'no-more-vms', Buffer.from('1'), 0);
    const first = gw.gateway.pool.vms()[0];
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await send(`${gw.url}/`)).status);
    expect(statuses).toEqual(new Array(6).fill(200));
    expect(gw.gateway.pool.vms()).toEqual([first]);
    const failed = gw.logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('VM of refuse not recycled: the fresh VM failed to start'));
    expect(failed).toHaveLength(1); // and no new attempt at every request after it
    expect(failed[0]).toMatchObject({ level: 'error', plugin: 'refuse', code: 'GW_ERR_ABI_VM_START' });
    expect(await metric(gw, 'edge_gateway_wasm_vm_recycle_failures_total')).toBe(1);
    expect(await metric(gw, 'edge_gateway_wasm_vm_recycles_total')).toBe(0);
  });

  it('answers the failure policy for a stream paused on the old VM when that VM fails, and stays healthy', async () => {
    const upstream = await startUpstream();
    cleanup.push(upstream.close);
    const gw = await startGateway({
      clusters: [{ name: 'backend', endpoints: [upstream.url] }],
      plugins: [{ name: 'pause', vmId: 'p', module: wasmFile(pausingFilter(), 'pause'), limits: { memoryMb: 16, recycleMemoryMb: 2 } }],
      routes: [{ name: 'all', cluster: 'backend', filters: ['pause'], timeoutMs: 5000 }],
    });
    cleanup.push(gw.close);
    const paused = send(`${gw.url}/pause`);
    for (let i = 0; i < 8; i++) expect((await send(`${gw.url}/fast`)).status).toBe(200);
    expect(await metric(gw, 'edge_gateway_wasm_vm_recycles_total')).toBe(1);
    const started = Date.now();
    sharedDataOf(gw).set('p', 'trap-now', Buffer.from('1'), 0);
    // Without the old VM's failure reaching it, the paused stream would wait for the route timeout (504).
    expect((await paused).status).toBe(503);
    expect(Date.now() - started).toBeLessThan(2000);
    const plugins = (await (await fetch(`${gw.adminUrl}/plugins`)).json()) as PluginInfo[];
    expect(plugins.map((p) => [p.name, p.healthy])).toEqual([['pause', true]]);
    expect((await send(`${gw.url}/fast`)).status).toBe(200);
  });
});
