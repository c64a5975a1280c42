/**
 * Memory of a gateway child, read the way a leak test needs it: after a collection the test asks
 * for, and without the part of the heap V8 keeps for new objects.
 *
 * The child is started with `--expose-gc --import GC_ON_SIGNAL`. On SIGUSR2 it collects, then
 * prints one JSON line with the physical size of V8's young generation and what V8 holds (heap in
 * use and external memory).
 * Node 24's V8 grows the young generation (64 → 128 MiB) under a reload storm and keeps it after
 * the collection. It is reused for the next allocations, so it is not a leak, but it counts in
 * the RSS. What a leaked generation, VM or Wasm memory would keep shows as the rest of the RSS.
 */
import { readFileSync } from 'node:fs';
import type { GatewayProcess } from './gateway-process.js';

export const GC_ON_SIGNAL = 'data:text/javascript,' + [
  'import{getHeapSpaceStatistics as spaces}from"node:v8";',
  'process.on("SIGUSR2",()=>{globalThis.gc();',
  'const young=spaces().filter((s)=>s.space_name.startsWith("new")).reduce((n,s)=>n+s.physical_space_size,0);',
  'const {heapUsed,external}=process.memoryUsage();',
  'process.stdout.write(JSON.stringify({msg:"gc",young,held:heapUsed+external})+"\\n")})',
].join('');

export function rssBytes(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'))!;
  return Number(/(\d+)/.exec(line)![1]) * 1024;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A settled reading: the resident set less V8's young generation, and what V8 holds. */
export interface SettledMemory {
  /** Resident set less the young generation (see the file header). */
  readonly rss: number;
  /** V8's heap in use after the collection, and the memory outside it that V8 accounts for (ArrayBuffers, Wasm memories). */
  readonly held: number;
}

/**
 * The lowest of each figure over a few collections: what is still reachable, not garbage waiting
 * nor room kept for new objects.
 */
export async function settledMemory(gw: GatewayProcess): Promise<SettledMemory> {
  let rss = Infinity;
  let held = Infinity;
  for (let i = 0; i < 6; i++) {
    gw.signal('SIGUSR2');
    const line = await gw.waitFor((l) => l.msg === 'gc', 'a collection');
    gw.lines.splice(gw.lines.indexOf(line), 1);
    // Pages freed by the collection go back to the OS a little after it, so read the RSS later.
    await sleep(150);
    rss = Math.min(rss, rssBytes(gw.pid) - Number(line.young));
    held = Math.min(held, Number(line.held));
  }
  return { rss, held };
}
