/**
 * Bounds-checked access to a guest's linear memory.
 *
 * NB: `memory.buffer` changes identity whenever the guest grows its memory, which can happen
 * during any call into the guest (the allocator included). Every accessor re-derives its views
 * from the current buffer, so no view outlives a guest call.
 */

/** Thrown by an accessor for an out-of-range pointer; hostcalls turn it into INVALID_MEMORY_ACCESS. */
export class MemoryFault extends Error {
  constructor(readonly ptr: number, readonly len: number, readonly size: number) {
    super(`guest memory access [${ptr}, ${ptr + len}) outside 0..${size}`);
    this.name = 'MemoryFault';
  }
}

const utf8 = new TextDecoder('utf-8');

export class GuestMemory {
  private memory: WebAssembly.Memory | null = null;
  private buffer: ArrayBuffer | null = null;
  private bytes: Buffer = Buffer.alloc(0);
  private view: DataView = new DataView(new ArrayBuffer(0));

  /** A shared memory keeps its old buffer valid (and shorter) when it grows. */
  private shared = false;

  attach(memory: WebAssembly.Memory): void {
    this.memory = memory;
    this.shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
    this.refresh();
  }

  get attached(): boolean {
    return this.memory !== null;
  }

  get size(): number {
    return this.current().length;
  }

  private refresh(): void {
    const buffer = this.memory!.buffer;
    this.buffer = buffer;
    this.bytes = Buffer.from(buffer);
    this.view = new DataView(buffer);
  }

  /** The byte view of the memory as it is now. */
  current(): Buffer {
    if (this.memory === null) throw new MemoryFault(0, 0, 0);
    // Growing a non-shared memory detaches its old buffer, so a stale view reads length 0. That
    // test is a field load; the `memory.buffer` getter is a call into V8 (~30 ns, several per
    // hostcall; bench/README.md). Shared and empty memories ask the getter every time.
    if ((this.bytes.length === 0 || this.shared) && this.memory.buffer !== this.buffer) this.refresh();
    return this.bytes;
  }

  check(ptr: number, len: number): void {
    const size = this.current().length;
    // ptr and len arrive as signed i32; reinterpret as u32 before comparing.
    ptr >>>= 0;
    len >>>= 0;
    if (ptr + len > size) throw new MemoryFault(ptr, len, size);
  }

  u32(ptr: number): number {
    this.check(ptr, 4);
    return this.view.getUint32(ptr >>> 0, true);
  }

  setU32(ptr: number, value: number): void {
    this.check(ptr, 4);
    this.view.setUint32(ptr >>> 0, value >>> 0, true);
  }

  setU64(ptr: number, value: bigint): void {
    this.check(ptr, 8);
    this.view.setBigUint64(ptr >>> 0, BigInt.asUintN(64, value), true);
  }

  setU8(ptr: number, value: number): void {
    this.check(ptr, 1);
    this.bytes[ptr >>> 0] = value;
  }

  /** A copy of `len` bytes at `ptr` (zero length is always valid, whatever the pointer). */
  copy(ptr: number, len: number): Uint8Array {
    if (len === 0) return EMPTY;
    this.check(ptr, len);
    ptr >>>= 0;
    // NB: Buffer#slice aliases like subarray; Buffer.from(buffer) is the copying form.
    return Buffer.from(this.bytes.subarray(ptr, ptr + (len >>> 0)));
  }

  /** Bytes at `ptr` as a byte string (latin1): header names and values round-trip byte-exact. */
  latin1(ptr: number, len: number): string {
    if (len === 0) return '';
    this.check(ptr, len);
    ptr >>>= 0;
    return this.bytes.toString('latin1', ptr, ptr + (len >>> 0));
  }

  /** Bytes at `ptr` decoded as UTF-8 (log messages, names). */
  utf8(ptr: number, len: number): string {
    if (len === 0) return '';
    this.check(ptr, len);
    ptr >>>= 0;
    return utf8.decode(this.bytes.subarray(ptr, ptr + (len >>> 0)));
  }

  write(ptr: number, data: Uint8Array): void {
    this.check(ptr, data.length);
    this.bytes.set(data, ptr >>> 0);
  }

  writeLatin1(ptr: number, text: string): void {
    this.check(ptr, text.length);
    this.bytes.write(text, ptr >>> 0, text.length, 'latin1');
  }
}

export const EMPTY = new Uint8Array(0);

