/**
 * Properties and foreign functions (reference §3.13, §3.14, §6.9). The Wasm attributes
 * (`plugin_name`, `plugin_root_id`, `plugin_vm_id`) are answered here in every context, including
 * the root's on_context_create, where the AssemblyScript SDK requires `plugin_root_id`. Everything
 * else comes from the stream (request.*, response.*, filter state) or the root's property source
 * (its plugin's, else the VM's).
 */
import { Status } from '../enums.js';
import { EMPTY } from '../memory.js';
import { propString, splitPath } from '../properties.js';
import { returnBytes } from '../returns.js';
import type { WasmVm } from '../vm.js';
import type { HostcallTable } from './table.js';

function lookup(vm: WasmVm, path: string[]): Uint8Array | undefined {
  const ctx = vm.target();
  const root = ctx?.root;
  if (path.length === 1 && root !== undefined) {
    switch (path[0]) {
      case 'plugin_name': return propString(root.pluginName);
      case 'plugin_root_id': return propString(root.rootId);
      case 'plugin_vm_id': return propString(vm.vmId);
    }
  }
  if (ctx != null && ctx.kind === 'stream') {
    const value = ctx.host.property(path);
    if (value !== undefined) return value;
  }
  return root?.properties?.property(path, root);
}

export function propertyHostcalls(vm: WasmVm): HostcallTable {
  return {
    proxy_get_property(pathPtr: number, pathLen: number, ptrPtr: number, sizePtr: number): number {
      const path = splitPath(vm.mem.latin1(pathPtr, pathLen));
      const value = lookup(vm, path);
      if (value === undefined) return Status.NOT_FOUND;
      returnBytes(vm, ptrPtr, sizePtr, value);
      return Status.OK;
    },

    /** Stored as stream filter state; a root has no stream info, so NOT_FOUND (Envoy). */
    proxy_set_property(pathPtr: number, pathLen: number, valPtr: number, valLen: number): number {
      const path = splitPath(vm.mem.latin1(pathPtr, pathLen));
      const value = vm.mem.copy(valPtr, valLen);
      const ctx = vm.target();
      if (ctx === null || ctx.kind !== 'stream') return Status.NOT_FOUND;
      return ctx.host.setProperty(path, value);
    },

    proxy_call_foreign_function(namePtr: number, nameLen: number, argsPtr: number, argsLen: number,
      ptrPtr: number, sizePtr: number): number {
      const name = vm.mem.utf8(namePtr, nameLen);
      const args = vm.mem.copy(argsPtr, argsLen);
      const fn = vm.ports.foreignFunctions?.get(name);
      const ctx = vm.target();
      if (fn === undefined || ctx === null) return Status.NOT_FOUND;
      const out = fn(args, { origin: ctx.root, contextId: ctx.id });
      const status = out instanceof Uint8Array ? Status.OK : out.status;
      const result = out instanceof Uint8Array ? out : out.result ?? EMPTY;
      // cpp-host writes each output slot only when its pointer is non-zero.
      if (ptrPtr !== 0 && sizePtr !== 0) returnBytes(vm, ptrPtr, sizePtr, result);
      else if (sizePtr !== 0) vm.mem.setU32(sizePtr, result.length);
      return status;
    },
  };
}
