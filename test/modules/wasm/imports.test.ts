/**
 * The typed import reader (gateway/modules/wasm/imports.ts): function imports carry their types
 * from the type section, every other kind is named, and malformed bytes are GW_ERR_MODULE_INVALID
 * naming the byte offset.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { isGatewayError } from '../../../gateway/errors.js';
import { readImports } from '../../../gateway/modules/wasm/imports.js';
import { watToBytes } from '../../helpers/wat.js';

function refusal(bytes: Uint8Array): string {
  try {
    readImports(bytes);
  } catch (err) {
    expect(isGatewayError(err, 'GW_ERR_MODULE_INVALID')).toBe(true);
    return (err as Error).message;
  }
  throw new Error('accepted');
}

describe('readImports', () => {
  it('reads every import kind in order, with the function types from the type section', () => {
    const bytes = watToBytes(`(module
      (type $hdr (func (param i32 i32 i32 i32 i32) (result i32)))
      (import "env" "proxy_get_header_map_value" (func (type $hdr)))
      (import "wasi_snapshot_preview1" "clock_time_get" (func (param i32 i64 i32) (result i32)))
      (import "env" "memory" (memory 2 10))
      (import "env" "table" (table 1 funcref))
      (import "env" "g" (global (mut i64)))
      (import "env" "f" (func (param f32 f64 externref) (result i32 i64)))
      (import "env" "done" (func)))`, 'typed.wat', { reference_types: true, multi_value: true });
    expect(readImports(bytes)).toEqual([
      { module: 'env', name: 'proxy_get_header_map_value', kind: 'function', type: { params: ['i32', 'i32', 'i32', 'i32', 'i32'], results: ['i32'] } },
      { module: 'wasi_snapshot_preview1', name: 'clock_time_get', kind: 'function', type: { params: ['i32', 'i64', 'i32'], results: ['i32'] } },
      { module: 'env', name: 'memory', kind: 'memory' },
      { module: 'env', name: 'table', kind: 'table' },
      { module: 'env', name: 'g', kind: 'global' },
      { module: 'env', name: 'f', kind: 'function', type: { params: ['f32', 'f64', 'externref'], results: ['i32', 'i64'] } },
      { module: 'env', name: 'done', kind: 'function', type: { params: [], results: [] } },
    ]);
  });

  it('gives the same names and kinds as WebAssembly.Module.imports for a shipped filter', () => {
    const bytes = readFileSync(new URL('../../../filters/dist/jwt.wasm', import.meta.url));
    const engine = WebAssembly.Module.imports(new WebAssembly.Module(bytes));
    expect(readImports(bytes).map(({ module, name, kind }) => ({ module, name, kind }))).toEqual(engine);
  });

  it('answers no imports for a module without an import section', () => {
    expect(readImports(watToBytes('(module (func))'))).toEqual([]);
  });

  it('refuses bad framing with GW_ERR_MODULE_INVALID and the byte offset', () => {
    expect(refusal(new Uint8Array([0, 0x61, 0x73, 0x6d, 2, 0, 0, 0]))).toContain('byte offset 4');
    const name = [...new TextEncoder().encode('proxy_log')];
    const good = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
      1, 8, 1, 0x60, 3, 0x7f, 0x7f, 0x7f, 1, 0x7f, // type section: (i32 i32 i32) -> i32
      2, 17, 1, 3, 0x65, 0x6e, 0x76, 9, ...name, 0, 0]); // import section: env.proxy_log, type 0
    expect(WebAssembly.validate(good)).toBe(true);
    // Cut inside the import section: the reader names where it ran out.
    expect(refusal(good.subarray(0, good.length - 3))).toContain('byte offset 20');
    // An import of a type index that does not exist.
    const bad = Uint8Array.from(good);
    bad[bad.length - 1] = 7;
    expect(refusal(bad)).toContain('uses type 7 of 1');
  });
});
