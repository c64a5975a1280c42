/**
 * Buffers (reference §3.4, §3.5, §6.4, §6.5). Offsets are computed in 64-bit-safe doubles because
 * SDKs pass 0xFFFFFFFF (Rust) or 0x7FFFFFFF (Go) as "everything", which wraps in 32 bits.
 */
import { BufferType, MAX_BUFFER_TYPE, Status } from '../enums.js';
import type { BodyBuffer } from '../body-buffer.js';
import { EMPTY } from '../memory.js';
import { returnBytes } from '../returns.js';
import type { WasmVm } from '../vm.js';
import type { HostcallTable } from './table.js';

/** Readable bytes of buffer `type` for the running context, or null when it is not available. */
function readable(vm: WasmVm, type: number): Uint8Array | BodyBuffer | null {
  const ctx = vm.target();
  if (ctx === null) return type === BufferType.VM_CONFIGURATION ? vm.vmConfiguration : null;
  const root = ctx.root;
  switch (type) {
    case BufferType.HTTP_CALL_RESPONSE_BODY:
      return root.callout?.body ?? null;
    case BufferType.GRPC_RECEIVE_BUFFER:
      return root.grpc?.message ?? null;
    case BufferType.VM_CONFIGURATION: // Envoy serves it in any context
      return vm.vmConfiguration;
    case BufferType.PLUGIN_CONFIGURATION: // Envoy: only while on_configure runs
      return root.configuring ? root.plugin.configuration : null;
    case BufferType.FOREIGN_FUNCTION_ARGUMENTS:
      return null;
    default:
      return ctx.kind === 'stream' ? ctx.host.body(type as BufferType) : null;
  }
}

function lengthOf(buf: Uint8Array | BodyBuffer): number {
  return buf.length;
}

function sliceOf(buf: Uint8Array | BodyBuffer, start: number, len: number): Uint8Array {
  if (len === 0) return EMPTY;
  return buf instanceof Uint8Array ? buf.subarray(start, start + len) : buf.slice(start, len);
}

export function bufferHostcalls(vm: WasmVm): HostcallTable {
  return {
    proxy_get_buffer_bytes(type: number, start: number, maxSize: number, ptrPtr: number, sizePtr: number): number {
      if (type >>> 0 > MAX_BUFFER_TYPE) return Status.BAD_ARGUMENT;
      // Both are u32, so their 64-bit sum never overflows: cpp-host's overflow check cannot fire for
      // wasm32 and start + 0xFFFFFFFF means "the rest of the buffer".
      start >>>= 0;
      maxSize >>>= 0;
      const buf = readable(vm, type);
      if (buf === null) return Status.NOT_FOUND;
      const size = lengthOf(buf);
      const len = start >= size ? 0 : Math.min(maxSize, size - start);
      returnBytes(vm, ptrPtr, sizePtr, sliceOf(buf, start, len));
      return Status.OK;
    },

    proxy_get_buffer_status(type: number, sizePtr: number, flagsPtr: number): number {
      if (type >>> 0 > MAX_BUFFER_TYPE) return Status.BAD_ARGUMENT;
      const buf = readable(vm, type);
      if (buf === null) return Status.NOT_FOUND;
      vm.mem.setU32(sizePtr, lengthOf(buf));
      vm.mem.setU32(flagsPtr, 0); // cpp-host always reports 0
      return Status.OK;
    },

    proxy_set_buffer_bytes(type: number, start: number, size: number, dataPtr: number, dataLen: number): number {
      if (type >>> 0 > MAX_BUFFER_TYPE || type > BufferType.UPSTREAM_DATA) return Status.BAD_ARGUMENT;
      const data = vm.mem.copy(dataPtr, dataLen);
      const ctx = vm.target();
      const buf = ctx !== null && ctx.kind === 'stream' ? ctx.host.body(type as BufferType) : null;
      if (buf === null) return Status.NOT_FOUND;
      return buf.splice(start >>> 0, size >>> 0, data);
    },

    /** ABI 0.1.0: plugin configuration during on_configure, VM configuration otherwise. */
    proxy_get_configuration(ptrPtr: number, sizePtr: number): number {
      const root = vm.target()?.root;
      const config = root !== undefined && root.configuring ? root.plugin.configuration : vm.vmConfiguration;
      returnBytes(vm, ptrPtr, sizePtr, config);
      return Status.OK;
    },
  };
}
