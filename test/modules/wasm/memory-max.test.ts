/** Every memory a function component's core module defines, capped. */
import { describe, expect, it } from 'vitest';
import { GLOBAL_EXPORT_PREFIX, exportMutableGlobals } from '../../../gateway/modules/wasm/export-globals.js';
import { capDefinedMemories } from '../../../gateway/modules/wasm/memory-max.js';
import { CORE_MODULE, instantiateCore as instantiate } from '../../helpers/core-module.js';
import { watToBytes } from '../../helpers/wat.js';

describe('capping the memories a core module defines', () => {
  it('gives a memory without a maximum the cap, so memory.grow past it fails in the guest', () => {
    const instance = instantiate(capDefinedMemories(CORE_MODULE, 4, 'test'));
    const grow = instance.exports.grow as () => number;
    expect(grow()).toBe(-1); // 2 + 4 pages > 4
    expect((instance.exports.memory as WebAssembly.Memory).buffer.byteLength).toBe(2 * 65536);
  });

  it('refuses a memory that needs more than the cap at start, naming it', () => {
    expect(() => capDefinedMemories(watToBytes('(module (memory 10))'), 4, 'core module fn.core.wasm'))
      .toThrow('core module fn.core.wasm: memory 0 needs 10 pages at start, over the cap of 4');
  });

  it('composes with the globals export (the loader applies both)', () => {
    const instance = instantiate(exportMutableGlobals(capDefinedMemories(CORE_MODULE, 8, 'test')));
    expect((instance.exports.grow as () => number)()).toBe(2);
    expect((instance.exports.grow as () => number)()).toBe(-1);
    expect(Object.keys(instance.exports)).toContain(`${GLOBAL_EXPORT_PREFIX}1`);
  });
});
