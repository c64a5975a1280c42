/**
 * Cold starts: a fresh process of each target, spawned until it proxied its first 200, then
 * stopped; `count` times per target, the targets interleaved (A B C, A B C…) so that a slow
 * stretch of the machine is shared out rather than landing on one target.
 */
import { stop } from '../lib/processes.js';
import { startTimed } from './launch.js';
import type { ColdStart } from './results.js';
import { REQUEST_HEADERS, type Target } from './targets.js';

export async function coldStarts(targets: Target[], count: number, onStep: (done: number, total: number, id: string) => void): Promise<Map<string, ColdStart[]>> {
  const out = new Map<string, ColdStart[]>(targets.map((t) => [t.id, []]));
  const total = count * targets.length;
  for (let k = 0; k < count; k++) {
    for (const [i, target] of targets.entries()) {
      onStep(k * targets.length + i, total, target.id);
      const started = await startTimed(target.id, await target.launch(), target.pinned, target.path, REQUEST_HEADERS);
      await stop(started.live.proc);
      out.get(target.id)!.push({ ms: round2(started.ms), firstRequestMs: round2(started.firstRequestMs) });
    }
  }
  return out;
}

const round2 = (x: number): number => Math.round(x * 100) / 100;
