/**
 * A core module like the main module of a function component, in miniature: an imported global,
 * mutable globals of two types and one that is not, an exported memory of 2 pages, a function that
 * moves the "stack pointer" and one that grows memory by 4 pages.
 */
import { watToBytes } from './wat.js';

export const CORE_MODULE = watToBytes(`(module
  (import "env" "g" (global $imported i32))
  (global $sp (mut i32) (i32.const 1024))
  (global $fixed i64 (i64.const 7))
  (global $big (mut i64) (i64.const 9))
  (memory (export "memory") 2)
  (func (export "bump") (global.set $sp (i32.add (global.get $sp) (i32.const 16))))
  (func (export "grow") (result i32) (memory.grow (i32.const 4))))`);

export const instantiateCore = (bytes: Uint8Array): WebAssembly.Instance =>
  new WebAssembly.Instance(new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>), { env: { g: new WebAssembly.Global({ value: 'i32' }, 5) } });
