import { afterEach, describe, expect, it } from 'vitest';
import { startGateway, startUpstream, wasmFile, type TestGateway } from '../helpers/gateway.js';
import { send } from '../helpers/guests.js';
import { guestWat } from '../helpers/wat.js';

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup.length = 0;
});

/**
 * Writes 100 bytes of shared data under the request's :path on every request; on /big it writes
 * a 2 MiB value instead (over the value limit: BAD_ARGUMENT, answered as x-status).
 */
const WRITER = guestWat({
  imports: `
  (import "env" "proxy_get_header_map_value" (func $get_header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value" (func $add_header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_shared_data" (func $set (param i32 i32 i32 i32 i32) (result i32)))`,
  body: `
  (data (i32.const 0x100) ":path")
  (data (i32.const 0x110) "x-status")
  (data (i32.const 0x200) "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")
  (global $status (mut i32) (i32.const 0))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $get_header (i32.const 0) (i32.const 0x100) (i32.const 5) (i32.const 0x10) (i32.const 0x14)))
    (if (i32.eq (i32.load (i32.const 0x14)) (i32.const 4))
      (then (global.set $status (call $set (i32.load (i32.const 0x10)) (i32.const 4) (i32.const 0) (i32.const 0x200000) (i32.const 0))))
      (else (global.set $status (call $set (i32.load (i32.const 0x10)) (i32.load (i32.const 0x14)) (i32.const 0x200) (i32.const 100) (i32.const 0)))))
    (i32.const 0))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (i32.store8 (i32.const 0x120) (i32.add (i32.const 48) (global.get $status)))
    (drop (call $add_header (i32.const 2) (i32.const 0x110) (i32.const 8) (i32.const 0x120) (i32.const 1)))
    (i32.const 0))`,
});

async function scrape(gw: TestGateway, prefix = 'edge_gateway_shared_data_'): Promise<string[]> {
  const text = await (await fetch(`${gw.adminUrl}/metrics`)).text();
  return text.split('\n').filter((l) => l.startsWith(prefix));
}

/** Enqueues 300 bytes on its queue "q" on every request; nobody dequeues. */
const FLOODER = guestWat({
  imports: `
  (import "env" "proxy_register_shared_queue" (func $register (param i32 i32 i32) (result i32)))
  (import "env" "proxy_enqueue_shared_queue" (func $enqueue (param i32 i32 i32) (result i32)))`,
  body: `
  (data (i32.const 0x100) "q")
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $register (i32.const 0x100) (i32.const 1) (i32.const 0x10)))
    (drop (call $enqueue (i32.load (i32.const 0x10)) (i32.const 0x1000) (i32.const 300)))
    (i32.const 0))`,
});

describe('shared-data metrics', () => {
  it('shows the bytes and keys each vm_id holds against sharedState.maxBytesPerVm, its evictions and its refusals', async () => {
    const upstream = await startUpstream();
    cleanup.push(upstream.close);
    const gw = await startGateway({
      sharedState: { backend: 'memory', maxBytesPerVm: 4096 },
      clusters: [{ name: 'backend', endpoints: [upstream.url] }],
      plugins: [{ name: 'writer', vmId: 'q', module: wasmFile(WRITER, 'writer') }],
      routes: [{ name: 'all', cluster: 'backend', filters: ['writer'] }],
    });
    cleanup.push(gw.close);
    // Each entry counts 3 + 100 + 384 = 487 bytes: 8 fit in 4096, the 9th and 10th evict the oldest.
    const statuses: string[] = [];
    for (let i = 0; i < 10; i++) statuses.push(String((await send(`${gw.url}/k${i}`)).headers['x-status']));
    expect(statuses).toEqual(new Array(10).fill('0'));
    expect((await send(`${gw.url}/big`)).headers['x-status']).toBe('2'); // BAD_ARGUMENT
    expect(await scrape(gw)).toEqual([
      `edge_gateway_shared_data_bytes{vm_id="q"} ${8 * 487}`,
      'edge_gateway_shared_data_entries{vm_id="q"} 8',
      'edge_gateway_shared_data_evictions_total{vm_id="q"} 2',
      'edge_gateway_shared_data_refusals_total{vm_id="q",reason="value_size"} 1',
    ]);
  });
});

describe('shared-queue metrics', () => {
  it('shows the bytes a vm_id\'s queues hold against sharedState.maxBytesPerVm and the items dropped to stay under it', async () => {
    const upstream = await startUpstream();
    cleanup.push(upstream.close);
    const gw = await startGateway({
      sharedState: { backend: 'memory', maxBytesPerVm: 4096 },
      clusters: [{ name: 'backend', endpoints: [upstream.url] }],
      plugins: [{ name: 'flooder', vmId: 'f', module: wasmFile(FLOODER, 'flooder') }],
      routes: [{ name: 'all', cluster: 'backend', filters: ['flooder'] }],
    });
    cleanup.push(gw.close);
    // Each item counts 300 + 64 = 364 bytes: 11 fit in 4096; requests 12 to 20 each drop the oldest.
    for (let i = 0; i < 20; i++) expect((await send(`${gw.url}/q${i}`)).status).toBe(200);
    expect(await scrape(gw, 'edge_gateway_shared_queue_')).toEqual([
      `edge_gateway_shared_queue_bytes{vm_id="f"} ${11 * 364}`,
      'edge_gateway_shared_queue_dropped_total{vm_id="f"} 9',
    ]);
  });
});
