/**
 * Buffers (reference §3.5): request and response bodies, the http-call and gRPC responses, the
 * VM and plugin configuration, foreign-function arguments. A buffer that is not available in the
 * current callback reads as null.
 */
import { proxy_get_buffer_bytes, proxy_get_buffer_status, proxy_set_buffer_bytes } from "./imports";
import { RET_LEN, RET_PTR, RET_U32, RET_U32_B, bufferLen, bufferPtr, clearReturn, discardReturned, takeBytes } from "./memory";
import { BufferType, Status } from "./types";

/** `maxSize` meaning "everything from `start`" (the host clamps it, computing in 64 bits). */
export const ALL: u32 = 0xffffffff;

/**
 * Up to `maxSize` bytes of the buffer from `start` (fewer when the buffer is shorter), or null
 * when the buffer does not exist here. An existing but empty range is an empty ArrayBuffer.
 */
export function getBufferBytes(buffer: BufferType, start: u32 = 0, maxSize: u32 = ALL): ArrayBuffer | null {
  clearReturn();
  if (proxy_get_buffer_bytes(<u32>buffer, start, maxSize, RET_PTR, RET_LEN) != Status.Ok) {
    discardReturned();
    return null;
  }
  return takeBytes();
}

/** Like `getBufferBytes`, decoded as UTF-8. */
export function getBufferString(buffer: BufferType, start: u32 = 0, maxSize: u32 = ALL): string | null {
  const bytes = getBufferBytes(buffer, start, maxSize);
  return bytes === null ? null : String.UTF8.decode(bytes);
}

/**
 * Splices the buffer: replaces `size` bytes at `start` with `data` (reference §6.5). The forms
 * every host supports: `(0, 0)` prepends, `(start >= length, *)` appends, `(0, >= length)`
 * replaces everything. The host does not fix `content-length`; remove it in the headers callback.
 */
export function setBufferBytes(buffer: BufferType, start: u32, size: u32, data: ArrayBuffer | null): Status {
  return <Status>proxy_set_buffer_bytes(<u32>buffer, start, size, bufferPtr(data), bufferLen(data));
}

/** Length and flags of a buffer (cpp-host reports flags 0). */
export class BufferStatus {
  constructor(public status: Status, public size: u32, public flags: u32) {}
}

export function getBufferStatus(buffer: BufferType): BufferStatus {
  store<u64>(RET_U32, 0);
  const status = <Status>proxy_get_buffer_status(<u32>buffer, RET_U32, RET_U32_B);
  return new BufferStatus(status, load<u32>(RET_U32), load<u32>(RET_U32_B));
}

/** The VM configuration (buffer 6), readable in `onVmStart`. */
export function getVmConfiguration(): ArrayBuffer | null {
  return getBufferBytes(BufferType.VmConfiguration);
}

/** The plugin configuration (buffer 7), readable in `onConfigure`. */
export function getPluginConfiguration(): ArrayBuffer | null {
  return getBufferBytes(BufferType.PluginConfiguration);
}
