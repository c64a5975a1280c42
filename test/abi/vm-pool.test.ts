import { describe, expect, it } from 'vitest';
import type { GuestFn } from '../../gateway/abi/callbacks.js';
import type { RootContext } from '../../gateway/abi/context.js';
import { Status } from '../../gateway/abi/enums.js';
import { encodePairs } from '../../gateway/abi/pairs.js';
import type { PluginPorts } from '../../gateway/abi/ports.js';
import type { VmFailure } from '../../gateway/abi/vm.js';
import { VmPool } from '../../gateway/abi/vm-pool.js';
import type { TypedImport } from '../../gateway/abi/wasm-types.js';
import { isGatewayError } from '../../gateway/errors.js';
import { createModuleStore } from '../../gateway/modules/module-store.js';
import { RecordingLogger, text } from '../helpers/host.js';
import { guestWat, watToBytes } from '../helpers/wat.js';

/** Counts root contexts per instance in a global, so sharing is visible from outside. */
const counting = watToBytes(guestWat({ body: `
  (global $roots (mut i32) (i32.const 0))
  (func (export "roots") (result i32) (global.get $roots))
  (func (export "proxy_on_context_create") (param $id i32) (param $parent i32)
    (if (i32.eqz (local.get $parent)) (then (global.set $roots (i32.add (global.get $roots) (i32.const 1))))))` }));

const plugin = (name: string, ports?: PluginPorts) => ({ name, rootId: name, configuration: text(`{"name":"${name}"}`), ports });

/** Traps when its `boom` export is called. */
const failing = watToBytes(guestWat({ body: '(func (export "boom") unreachable)' }));

const CALL = encodePairs([':method', 'GET', ':path', '/', ':authority', 'c']);
const escaped = (bytes: Uint8Array): string => [...bytes].map((b) => `\\${b.toString(16).padStart(2, '0')}`).join('');
/** `callout` makes an http_call to cluster "c", `property` reads property "node". */
const calling = watToBytes(guestWat({
  imports: `(import "env" "proxy_http_call" (func $call (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_property" (func $prop (param i32 i32 i32 i32) (result i32)))`,
  body: `
  (data (i32.const 0x100) "c")
  (data (i32.const 0x200) "${escaped(CALL)}")
  (data (i32.const 0x300) "node")
  (func (export "callout") (result i32)
    (call $call (i32.const 0x100) (i32.const 1) (i32.const 0x200) (i32.const ${CALL.length})
      (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 1000) (i32.const 0x18)))
  (func (export "property") (result i32) (call $prop (i32.const 0x300) (i32.const 4) (i32.const 0x10) (i32.const 0x14)))`,
}));

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

  it('watches each VM once however many plugins start and stop on it, and tells only the plugins still on it of a failure', async () => {
    const module = await createModuleStore().compile(failing, 'failing.wasm');
    const pool = new VmPool({ logger: new RecordingLogger() });
    const spec = { vmId: '', vmConfiguration: text('') };
    const told: Array<[string, RootContext, VmFailure]> = [];
    const events = (name: string) => ({ failed: (root: RootContext, f: VmFailure) => { told.push([name, root, f]); } });
    // A hundred generations of one plugin, each stopped when the next has started (a reload each).
    let current = pool.startPlugin(module, spec, plugin('a'), events('a'));
    for (let i = 0; i < 100; i++) {
      const next = pool.startPlugin(module, spec, plugin('a'), events('a'));
      pool.stopPlugin(current);
      current = next;
    }
    const other = pool.startPlugin(module, spec, plugin('b'), events('b'));
    const vm = current.vm;
    expect(pool.vms()).toEqual([vm]);
    expect(vm.failListenerCount).toBe(1);
    vm.call(current, vm.instance.exports.boom as GuestFn);
    expect(told).toEqual([['a', current, vm.failure], ['b', other, vm.failure]]);
    // Its last plugin gone, the pool lets the VM go and stops listening to it.
    pool.stopPlugin(current);
    pool.stopPlugin(other);
    expect(pool.vms()).toEqual([]);
    expect(vm.failListenerCount).toBe(0);
  });

  it('gives each plugin on a shared VM its own callouts and properties, and the VM\'s to a plugin without', async () => {
    const module = await createModuleStore().compile(calling, 'calling.wasm');
    const asked: string[] = [];
    const ports = (name: string): PluginPorts => ({
      callouts: { httpCall: (req) => { asked.push(`${name} callouts for ${req.origin.pluginName}`); return Status.OK; } },
      properties: { property: (_path, origin) => { asked.push(`${name} properties for ${origin.pluginName}`); return undefined; } },
    });
    const pool = new VmPool({ logger: new RecordingLogger(), ...ports('vm') });
    const spec = { vmId: '', vmConfiguration: text('') };
    const roots = [
      pool.startPlugin(module, spec, plugin('old', ports('old'))),
      pool.startPlugin(module, spec, plugin('new', ports('new'))),
      pool.startPlugin(module, spec, plugin('plain')),
    ];
    const vm = roots[0].vm;
    expect(new Set(roots.map((r) => r.vm)).size).toBe(1);
    for (const root of roots) {
      vm.call(root, vm.instance.exports.callout as GuestFn);
      vm.call(root, vm.instance.exports.property as GuestFn);
    }
    expect(asked).toEqual([
      'old callouts for old', 'old properties for old',
      'new callouts for new', 'new properties for new',
      'vm callouts for plain', 'vm properties for plain',
    ]);
  });
});
