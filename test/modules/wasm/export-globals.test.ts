/** Every mutable global of a function component's core module exported, so an instance's state can be read and put back. */
import { describe, expect, it } from 'vitest';
import { GLOBAL_EXPORT_PREFIX, exportMutableGlobals } from '../../../gateway/modules/wasm/export-globals.js';
import { CORE_MODULE, instantiateCore as instantiate } from '../../helpers/core-module.js';
import { watToBytes } from '../../helpers/wat.js';

describe('exporting the mutable globals of a core module', () => {
  it('exports each mutable global by its index, keeps the module\'s own exports, and the values can be put back', () => {
    const instance = instantiate(exportMutableGlobals(CORE_MODULE));
    const names = Object.keys(instance.exports);
    expect(names).toEqual(['memory', 'bump', 'grow', `${GLOBAL_EXPORT_PREFIX}1`, `${GLOBAL_EXPORT_PREFIX}3`]);
    const sp = instance.exports[`${GLOBAL_EXPORT_PREFIX}1`] as WebAssembly.Global;
    expect(sp.value).toBe(1024);
    (instance.exports.bump as () => void)();
    expect(sp.value).toBe(1040);
    sp.value = 1024;
    (instance.exports.bump as () => void)();
    expect(sp.value).toBe(1040);
    expect((instance.exports[`${GLOBAL_EXPORT_PREFIX}3`] as WebAssembly.Global).value).toBe(9n);
  });

  it('leaves a module without mutable globals as it was', () => {
    const bytes = watToBytes('(module (global i32 (i32.const 1)) (func (export "f")))');
    expect(exportMutableGlobals(bytes)).toBe(bytes);
  });
});
