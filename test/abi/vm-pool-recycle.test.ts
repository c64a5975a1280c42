import { describe, expect, it } from 'vitest';
import type { RootContext } from '../../gateway/abi/context.js';
import type { WasmVm } from '../../gateway/abi/vm.js';
import { isGatewayError } from '../../gateway/errors.js';
import { createModuleStore, type LoadedModule } from '../../gateway/modules/module-store.js';
import { RECYCLE_RETRY_MS, VmPool } from '../../gateway/abi/vm-pool.js';
import { MemorySharedData } from '../../gateway/shared-state/memory.js';
import { RecordingLogger, TestStream, text } from '../helpers/host.js';
import { guestWat, watToBytes } from '../helpers/wat.js';

/**
 * Logs its root callbacks (the origin says which plugin), refuses to start while shared data holds
 * "fail-start", and grows its memory on demand through the `grow` export.
 */
const lifecycle = watToBytes(guestWat({
  imports: `
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_shared_data" (func $get (param i32 i32 i32 i32 i32) (result i32)))`,
  body: `
  (data (i32.const 0x100) "vm_start")
  (data (i32.const 0x110) "configure")
  (data (i32.const 0x120) "done")
  (data (i32.const 0x130) "delete")
  (data (i32.const 0x140) "fail-start")
  (func $say (param $p i32) (param $l i32) (drop (call $log (i32.const 2) (local.get $p) (local.get $l))))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
    (call $say (i32.const 0x100) (i32.const 8))
    (i32.ne (call $get (i32.const 0x140) (i32.const 10) (i32.const 0x10) (i32.const 0x14) (i32.const 0x18)) (i32.const 0)))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (call $say (i32.const 0x110) (i32.const 9)) (i32.const 1))
  (func (export "proxy_on_done") (param i32) (result i32) (call $say (i32.const 0x120) (i32.const 4)) (i32.const 1))
  (func (export "proxy_on_delete") (param i32) (call $say (i32.const 0x130) (i32.const 6)))
  (func (export "grow") (param $pages i32) (result i32) (memory.grow (local.get $pages)))`,
}));

const plugin = (name: string) => ({ name, rootId: name, configuration: text(`{"name":"${name}"}`) });
const MIB = 1024 * 1024;

interface Setup {
  pool: VmPool;
  logger: RecordingLogger;
  sharedData: MemorySharedData;
  module: LoadedModule;
  roots: Map<string, RootContext>;
  /** Each plugin's roots as the pool handed them out, first the starting one. */
  moves: Array<[string, RootContext]>;
}

async function setup(plugins: string[], vmId = ''): Promise<Setup> {
  const module = await createModuleStore().compile(lifecycle, 'lifecycle.wasm');
  const logger = new RecordingLogger();
  const sharedData = new MemorySharedData();
  const pool = new VmPool({ logger, sharedData });
  const roots = new Map<string, RootContext>();
  const moves: Array<[string, RootContext]> = [];
  for (const name of plugins) {
    const root = pool.startPlugin(module, { vmId, vmConfiguration: text('') }, plugin(name), {
      moved: (moved) => {
        roots.set(name, moved);
        moves.push([name, moved]);
      },
    });
    roots.set(name, root);
  }
  logger.lines.length = 0;
  return { pool, logger, sharedData, module, roots, moves };
}

/** `<plugin>: <message>` of every guest log line since the last call. */
function said(logger: RecordingLogger): string[] {
  const out = logger.lines.map((l) => `${l.origin?.pluginName ?? '-'}: ${l.message}`);
  logger.lines.length = 0;
  return out;
}

const grow = (vm: WasmVm, pages: number): number => (vm.instance.exports.grow as (n: number) => number)(pages);

describe('VmPool recycling', () => {
  it('starts a fresh VM with a root for every plugin (on_vm_start, on_configure) and tells each plugin its new root', async () => {
    const s = await setup(['a', 'b']);
    const old = s.roots.get('a')!.vm;
    grow(old, 32);
    const result = s.pool.recycle(old, MIB);
    expect(result).toMatchObject({ recycled: true, plugins: 'a,b' });
    const fresh = result!.recycled ? result!.fresh : null;
    expect(fresh).not.toBe(old);
    expect(s.moves.map(([name, root]) => [name, root.pluginName, root.vm === fresh, root.alive])).toEqual([['a', 'a', true, true], ['b', 'b', true, true]]);
    // No stream ran on the old VM: it ended at once, its roots with on_done and on_delete.
    expect(said(s.logger)).toEqual([
      'a: vm_start', 'a: configure', 'b: vm_start', 'b: configure',
      'a: done', 'a: delete', 'b: done', 'b: delete',
    ]);
    expect(s.pool.vms()).toEqual([fresh]);
    expect(s.pool.recycles()).toEqual([{ plugins: 'a,b', recycles: 1, failures: 0 }]);
    // A retired VM is not recycled again.
    expect(s.pool.recycle(old, MIB)).toBeNull();
  });

  it('keeps a recycled VM for its in-flight streams and ends its roots with the last of them', async () => {
    const s = await setup(['a', 'b']);
    const oldA = s.roots.get('a')!;
    const old = oldA.vm;
    const first = old.createStream(oldA, new TestStream());
    const second = old.createStream(s.roots.get('b')!, new TestStream());
    s.pool.recycle(old, MIB);
    said(s.logger);
    expect(s.pool.vms()).toHaveLength(2);
    expect([oldA.alive, old.failed]).toEqual([true, false]);
    first.destroy();
    s.pool.streamEnded(old);
    expect(said(s.logger)).toEqual([]);
    expect(s.pool.vms()).toHaveLength(2);
    second.destroy();
    s.pool.streamEnded(old);
    expect(said(s.logger)).toEqual(['a: done', 'a: delete', 'b: done', 'b: delete']);
    expect(s.pool.vms()).toEqual([s.roots.get('a')!.vm]);
    expect(oldA.alive).toBe(false);
  });

  it('keeps the old VM serving when the fresh one fails to start, and tries again only after RECYCLE_RETRY_MS', async () => {
    const s = await setup(['a']);
    const old = s.roots.get('a')!.vm;
    s.sharedData.set('', 'fail-start', text('1'), 0);
    const result = s.pool.recycle(old, MIB);
    expect(result?.recycled).toBe(false);
    const error = result!.recycled ? null : result!.error;
    expect(isGatewayError(error, 'GW_ERR_ABI_VM_START')).toBe(true);
    expect(s.moves).toEqual([]);
    expect(s.pool.vms()).toEqual([old]);
    expect(s.roots.get('a')!.alive).toBe(true);
    expect(s.pool.recycle(old, MIB)).toBeNull();
    expect(s.pool.recycles()).toEqual([{ plugins: 'a', recycles: 0, failures: 1 }]);
    expect(RECYCLE_RETRY_MS).toBeGreaterThanOrEqual(10_000);
  });

  it('discards a fresh VM that is already over the threshold once started, ending the roots it started', async () => {
    const s = await setup(['a']);
    const old = s.roots.get('a')!.vm;
    const result = s.pool.recycle(old, 64 * 1024); // the guest starts with 2 pages (128 KiB)
    expect(result).toEqual({ recycled: false, plugins: 'a', error: null, freshBytes: 128 * 1024 });
    expect(said(s.logger)).toEqual(['a: vm_start', 'a: configure', 'a: done', 'a: delete']);
    expect(s.pool.vms()).toEqual([old]);
    expect(s.moves).toEqual([]);
  });

  it('keeps a vm_id’s shared data across a recycle and releases it with the vm_id’s last VM', async () => {
    const s = await setup(['a', 'b'], 'edge');
    s.sharedData.set('edge', 'k', text('kept'), 0);
    s.pool.recycle(s.roots.get('a')!.vm, MIB);
    expect(s.sharedData.get('edge', 'k')).toBeDefined();
    s.pool.stopPlugin(s.roots.get('a')!);
    expect(s.sharedData.get('edge', 'k')).toBeDefined();
    s.pool.stopPlugin(s.roots.get('b')!);
    expect(s.sharedData.get('edge', 'k')).toBeUndefined();
    expect(s.pool.vms()).toEqual([]);
  });
});
