/**
 * Property test of the two parsers of untrusted bytes (cpp-host fuzzes its bytecode reader the
 * same way): random byte mutations of real modules through readImports and instrumentModule end
 * either in GW_ERR_MODULE_INVALID or, for a mutant the engine accepts, in bytes the engine accepts
 * too. Never another exception, never a refusal or an invalid rewrite of a module the engine
 * accepts. Bounded in count and time.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { isGatewayError } from '../../../gateway/errors.js';
import { readImports } from '../../../gateway/modules/wasm/imports.js';
import { instrumentModule } from '../../../gateway/modules/wasm/instrument.js';
import { loggingFilter } from '../../helpers/guests.js';
import { watToBytes } from '../../helpers/wat.js';

const SEEDS: Array<[string, Uint8Array]> = [
  ['deny.wasm', new Uint8Array(readFileSync(new URL('../../../filters/dist/deny.wasm', import.meta.url)))],
  ['stamp.wasm', new Uint8Array(readFileSync(new URL('../../../filters/dist/stamp.wasm', import.meta.url)))],
  ['logging filter', watToBytes(loggingFilter())],
  ['go shape', watToBytes(readFileSync(new URL('../../fixtures/sdk-shapes/go.wat', import.meta.url), 'utf8'))],
];
const MAX_CASES = 4000;
const MAX_MS = 4000;

/** xorshift32: reproducible mutants from a fixed seed. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x;
  };
}

function mutate(src: Uint8Array, next: () => number): Uint8Array<ArrayBuffer> {
  const out = Uint8Array.from(src);
  const edits = 1 + (next() % 4);
  for (let i = 0; i < edits; i++) {
    const at = 8 + (next() % (out.length - 8)); // keep the header: past it is where the parsers work
    const kind = next() % 3;
    if (kind === 0) out[at] = next() & 0xff;
    else if (kind === 1) out[at] ^= 1 << (next() % 8);
    else out[at] = [0x00, 0x7f, 0x80, 0xff, 0x0b, 0x03, 0x10, 0xfd][next() % 8];
  }
  return out;
}

describe('random mutations of real modules', () => {
  it('end in GW_ERR_MODULE_INVALID or valid bytes, never another exception', () => {
    const next = rng(0x5eed);
    const deadline = performance.now() + MAX_MS;
    const tally = { cases: 0, refused: 0, rewritten: 0, validMutants: 0 };
    const problems: string[] = [];
    while (tally.cases < MAX_CASES && performance.now() < deadline) {
      const [name, seed] = SEEDS[tally.cases % SEEDS.length];
      const mutant = mutate(seed, next);
      tally.cases++;
      const valid = WebAssembly.validate(mutant);
      if (valid) tally.validMutants++;
      try {
        readImports(mutant);
        const out = instrumentModule(mutant);
        tally.rewritten++;
        if (valid && !WebAssembly.validate(out.bytes)) problems.push(`${name} case ${tally.cases}: valid mutant, invalid rewrite`);
      } catch (err) {
        if (!isGatewayError(err, 'GW_ERR_MODULE_INVALID')) problems.push(`${name} case ${tally.cases}: ${String(err)}`);
        else if (!/byte offset \d+/.test((err as Error).message)) problems.push(`${name} case ${tally.cases}: no offset in ${(err as Error).message}`);
        else if (valid) problems.push(`${name} case ${tally.cases}: valid mutant refused: ${(err as Error).message}`);
        else tally.refused++;
      }
    }
    expect(problems).toEqual([]);
    expect(tally.cases).toBeGreaterThan(500);
    expect(tally.refused).toBeGreaterThan(0);
    expect(tally.validMutants).toBeGreaterThan(0);
  });
});
