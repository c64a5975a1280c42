import { describe, expect, it } from 'vitest';
import type { TypedImport } from '../../gateway/abi/wasm-types.js';
import { isGatewayError } from '../../gateway/errors.js';
import { createModuleStore } from '../../gateway/modules/module-store.js';
import { VmPool } from '../../gateway/abi/vm-pool.js';
import { RecordingLogger, text } from '../helpers/host.js';
import { guestWat, watToBytes } from '../helpers/wat.js';

/** Counts root contexts per instance in a global, so sharing is visible from outside. */
const counting = watToBytes(guestWat({ body: `
  (global $roots (mut i32) (i32.const 0))
  (func (export "roots") (result i32) (global.get $roots))
  (func (export "proxy_on_context_create") (param $id i32) (param $parent i32)
    (if (i32.eqz (local.get $parent)) (then (global.set $roots (i32.add (global.get $roots) (i32.const 1))))))` }));

const plugin = (name: string) => ({ name, rootId: name, configuration: text(`{"name":"${name}"}`) });

describe('VmPool', () => {
  it('shares one VM between plugins with the same vmId, module and VM configuration, one root each', async () => {
    const module = await createModuleStore().compile(counting, 'counting.wasm');
    const pool = new VmPool({ logger: new RecordingLogger() });
    const spec = { vmId: 'edge', vmConfiguration: text('vm') };
    const a = pool.startPlugin(module, spec, plugin('a'));
    const b = pool.startPlugin(module, spec, plugin('b'));
    expect(a.vm).toBe(b.vm);
    expect(a.id).not.toBe(b.id);
    expect((a.vm.instance.exports.roots as () => number)()).toBe(2);
    expect(pool.vms()).toHaveLength(1);
  });

  it('gives plugins with another vmId or VM configuration their own VM', async () => {
    const module = await createModuleStore().compile(counting, 'counting.wasm');
    const pool = new VmPool({ logger: new RecordingLogger() });
    const a = pool.startPlugin(module, { vmId: 'x', vmConfiguration: text('1') }, plugin('a'));
    const b = pool.startPlugin(module, { vmId: 'y', vmConfiguration: text('1') }, plugin('b'));
    const c = pool.startPlugin(module, { vmId: 'x', vmConfiguration: text('2') }, plugin('c'));
    expect(new Set([a.vm, b.vm, c.vm]).size).toBe(3);
  });

  it('drops a VM when its last plugin stops and starts a fresh one next time', async () => {
    const module = await createModuleStore().compile(counting, 'counting.wasm');
    const pool = new VmPool({ logger: new RecordingLogger() });
    const spec = { vmId: '', vmConfiguration: text('') };
    const a = pool.startPlugin(module, spec, plugin('a'));
    const b = pool.startPlugin(module, spec, plugin('b'));
    pool.stopPlugin(a);
    expect(pool.vms()).toEqual([b.vm]);
    pool.stopPlugin(b);
    expect(pool.vms()).toEqual([]);
    const c = pool.startPlugin(module, spec, plugin('c'));
    expect(c.vm).not.toBe(a.vm);
  });

  describe('allowedHostcalls', () => {
    const logging = watToBytes(guestWat({
      imports: '(import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))',
      body: '(func (export "proxy_on_context_create") (param i32 i32))',
    }));
    const refusal = (fn: () => unknown): unknown => {
      try {
        fn();
      } catch (err) {
        return err;
      }
      return null;
    };

    it('gives plugins with other capability lists their own VM, and shares one for the same list in any order', async () => {
      const module = await createModuleStore().compile(logging, 'logging.wasm');
      const pool = new VmPool({ logger: new RecordingLogger() });
      const spec = (allowedHostcalls?: string[]) => ({ vmId: '', vmConfiguration: text(''), allowedHostcalls });
      const a = pool.startPlugin(module, spec(['proxy_log', 'fd_write']), plugin('a'));
      const b = pool.startPlugin(module, spec(['fd_write', 'proxy_log']), plugin('b'));
      const c = pool.startPlugin(module, spec(['proxy_log']), plugin('c'));
      const d = pool.startPlugin(module, spec(), plugin('d'));
      expect(a.vm).toBe(b.vm);
      expect(new Set([a.vm, c.vm, d.vm]).size).toBe(3);
    });

    it('refuses a plugin whose list leaves out a hostcall the module imports, and keeps no VM for it', async () => {
      const module = await createModuleStore().compile(logging, 'logging.wasm');
      const pool = new VmPool({ logger: new RecordingLogger() });
      const err = refusal(() => pool.startPlugin(module, { vmId: '', vmConfiguration: text(''), allowedHostcalls: ['fd_write'] }, plugin('a')));
      expect(isGatewayError(err, 'GW_ERR_ABI_CAPABILITY')).toBe(true);
      expect((err as Error).message).toMatch(/^plugin a: module logging\.wasm:\n[\s\S]*does not list: proxy_log$/);
      expect(pool.vms()).toEqual([]);
    });

    it('checks the typed imports a loaded module carries against the host signatures', async () => {
      const compiled = await createModuleStore().compile(logging, 'logging.wasm');
      // The shape the module layer gives once it reads the import section (here: a wrong type).
      const imports: TypedImport[] = [{ module: 'env', name: 'proxy_log', kind: 'function', type: { params: ['i32'], results: ['i32'] } }];
      const pool = new VmPool({ logger: new RecordingLogger() });
      const err = refusal(() => pool.startPlugin({ ...compiled, imports } as typeof compiled, { vmId: '', vmConfiguration: text('') }, plugin('a')));
      expect(isGatewayError(err, 'GW_ERR_ABI_LINK')).toBe(true);
      expect((err as Error).message).toContain('env.proxy_log: expected (i32, i32, i32) -> i32, got (i32) -> i32');
    });
  });

  it('gives plugins with other limits their own VM, and each VM its plugin\'s budget and memory cap', async () => {
    const module = await createModuleStore().compile(counting, 'counting.wasm');
    const pool = new VmPool({ logger: new RecordingLogger() });
    const spec = { vmId: '', vmConfiguration: text('') };
    const small = { cpuMs: 5, startCpuMs: 100, memoryMb: 1 };
    const a = pool.startPlugin(module, { ...spec, limits: small }, plugin('a'));
    const b = pool.startPlugin(module, { ...spec, limits: { ...small, memoryMb: 2 } }, plugin('b'));
    const c = pool.startPlugin(module, { ...spec, limits: { ...small } }, plugin('c'));
    expect(a.vm).not.toBe(b.vm);
    expect(c.vm).toBe(a.vm);
    expect(a.vm.budget.limits).toEqual(small);
    // The module's memory is the capped import: it cannot grow past 1 MiB (16 pages).
    const memory = a.vm.instance.exports.memory as WebAssembly.Memory;
    expect(() => memory.grow(15)).toThrow(RangeError);
    expect(() => (b.vm.instance.exports.memory as WebAssembly.Memory).grow(30)).not.toThrow();
  });
});
