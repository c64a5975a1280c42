/**
 * Where the checks go (gateway/modules/wasm/call-graph.ts): recursion and indirect calls get entry
 * checks, small loop-free call trees get none, a call tree that multiplies work is stopped, and
 * weights grow with the code a check covers.
 */
import { describe, expect, it } from 'vitest';
import { planChecks, UNCHECKED_REACH_BYTES, type BodyInfo } from '../../../gateway/modules/wasm/call-graph.js';

const body = (size: number, callees: number[] = [], extra: Partial<BodyInfo> = {}): BodyInfo =>
  ({ start: 0, end: size, loops: false, indirect: false, imports: false, catches: false, bulk: false, callees, ...extra });

describe('planChecks', () => {
  it('checks recursion (self and mutual) and indirect callers at entry, and not small call trees', () => {
    const plan = planChecks([
      body(10, [0]), // 0: calls itself
      body(10, [2]), body(10, [1]), // 1 ⇄ 2
      body(10, [4, 4]), body(10), // 3 → 4: small tree
      body(10, [], { indirect: true }), // 5
    ], 10_000);
    expect(plan.map((p) => p.entry)).toEqual([true, true, true, false, false, true]);
  });

  it('checks a loop-free call tree whose reach passes the limit, even though no function is large', () => {
    // f_k calls f_{k-1} twice: reach doubles per level; 100 B leaves pass 16 KiB around level 8.
    const bodies = [body(100)];
    for (let k = 1; k < 20; k++) bodies.push(body(100, [k - 1, k - 1]));
    const plan = planChecks(bodies, 10_000);
    const first = plan.findIndex((p) => p.entry);
    expect(first).toBeGreaterThan(0);
    expect(100 * (2 ** (first + 1) - 1)).toBeGreaterThan(UNCHECKED_REACH_BYTES);
    // Above a checked level the reach starts again from 0: checks keep coming, levels apart.
    expect(plan.filter((p) => p.entry).length).toBeGreaterThan(1);
  });

  it('weighs a check by the code it covers, at least 1 and at most the interval', () => {
    const plan = planChecks([body(10), body(100_000, [], { loops: true }), body(1 << 30, [], { loops: true })], 10_000);
    expect(plan.map((p) => p.weight)).toEqual([1, Math.ceil(100_000 / 256), 10_000]);
  });
});
