/**
 * The process gives back a recycled VM's memory: a real `edge-gateway start` child process runs a
 * filter that grows (and writes) 8 MiB of linear memory per request; past recycleMemoryMb the VM
 * is replaced, and the child's resident set size (VmRSS in /proc/PID/status) falls back by most of
 * what the old VM held. The child runs with --expose-gc and a preload that collects garbage on
 * SIGUSR2, so the test does not wait on V8's own schedule (bounded polling either way).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startUpstream, wasmFile } from '../helpers/gateway.js';
import { GatewayProcess } from '../helpers/gateway-process.js';
import { Guest, send } from '../helpers/guests.js';
import { GC_ON_SIGNAL, rssBytes } from '../helpers/process-memory.js';

const MIB = 1024 * 1024;
const GROW_PAGES = 128; // 8 MiB a request

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup.length = 0;
});

function growingFilter(): string {
  const g = new Guest();
  return g.build({
    log: false,
    on: {
      proxy_on_request_headers: `
        (local.set $t (memory.grow (i32.const ${GROW_PAGES})))
        (if (i32.ge_s (local.get $t) (i32.const 0))
          (then (memory.fill (i32.shl (local.get $t) (i32.const 16)) (i32.const 0x5a) (i32.const ${GROW_PAGES * 65536}))))
        (i32.const 0)`,
    },
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('VM recycling in a gateway process', () => {
  it('gives the old VM\'s memory back to the OS: RSS falls well below its peak after the recycle', async () => {
    const upstream = await startUpstream();
    cleanup.push(upstream.close);
    const dir = mkdtempSync(join(tmpdir(), 'edge-gw-rss-'));
    const config = join(dir, 'gateway.json');
    writeFileSync(config, JSON.stringify({
      listeners: [{ name: 'public', address: '127.0.0.1', port: 0 }],
      admin: { address: '127.0.0.1', port: 0 },
      log: { level: 'info' },
      clusters: [{ name: 'backend', endpoints: [upstream.url] }],
      plugins: [{ name: 'grow', module: wasmFile(growingFilter(), 'grow-rss'), limits: { memoryMb: 128, recycleMemoryMb: 64 } }],
      routes: [{ name: 'all', cluster: 'backend', filters: ['grow'] }],
    }));
    // --expose-gc and a SIGUSR2 handler that collects: the test asks for a collection, bounded.
    const gw = await GatewayProcess.start(config, ['--expose-gc', '--import', GC_ON_SIGNAL]);
    cleanup.push(() => gw.stop());
    const { lines, url, pid } = gw;
    const recycled = (): boolean => lines.some((l) => typeof l.msg === 'string' && l.msg.startsWith('VM of grow recycled'));

    // Grow the VM until it is recycled (8 requests of 8 MiB pass 64 MiB), two requests at a time.
    let peak = rssBytes(pid);
    for (let round = 0; round < 10 && !recycled(); round++) {
      const replies = await Promise.all([send(`${url}/a`), send(`${url}/b`)]);
      expect(replies.map((r) => r.status)).toEqual([200, 200]);
      peak = Math.max(peak, rssBytes(pid));
    }
    expect(recycled()).toBe(true);
    expect(peak).toBeGreaterThan(64 * MIB);

    // The old VM had no stream left, so it was dropped at once: once collected, its pages go back.
    let rss = rssBytes(pid);
    for (let i = 0; i < 50 && rss > peak - 40 * MIB; i++) {
      process.kill(pid, 'SIGUSR2');
      await sleep(100);
      rss = rssBytes(pid);
    }
    expect(rss).toBeLessThan(peak - 40 * MIB);
    // And the gateway still serves, on the fresh VM.
    expect((await send(`${url}/after`)).status).toBe(200);
  });
});
