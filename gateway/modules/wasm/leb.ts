/**
 * Bytes of a WebAssembly binary, read and written: unsigned/signed LEB128 and names. A reader
 * never reads past its end; anything malformed is GW_ERR_MODULE_INVALID with the byte offset, so a
 * hostile module is refused with a coded error instead of an exception from the parser.
 */
import { GatewayError } from '../../errors.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Thrown for malformed bytes; `offset` is where in the module the reader stood. */
export function malformed(offset: number, what: string): GatewayError {
  return new GatewayError('GW_ERR_MODULE_INVALID', `malformed WebAssembly at byte offset ${offset} (0x${offset.toString(16)}): ${what}`);
}

export class ByteReader {
  pos: number;

  constructor(readonly bytes: Uint8Array, start = 0, public end = bytes.length) {
    this.pos = start;
  }

  get atEnd(): boolean {
    return this.pos >= this.end;
  }

  fail(what: string, at = this.pos): never {
    throw malformed(at, what);
  }

  u8(): number {
    if (this.pos >= this.end) this.fail('unexpected end');
    return this.bytes[this.pos++];
  }

  /** Unsigned LEB128 of at most 32 bits (5 bytes, unused high bits zero). */
  u32(): number {
    const at = this.pos;
    let result = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const b = this.u8();
      if (shift === 28 && (b & 0x70) !== 0) this.fail('u32 LEB128 out of range', at);
      result |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result >>> 0;
    }
    return this.fail('u32 LEB128 too long', at);
  }

  /** Skips a signed or unsigned LEB128 of at most `bits` bits (immediates copied verbatim). */
  skipLeb(bits: 32 | 33 | 64): void {
    const at = this.pos;
    const max = Math.ceil(bits / 7);
    for (let i = 0; i < max; i++) if ((this.u8() & 0x80) === 0) return;
    this.fail(`LEB128 longer than ${bits} bits`, at);
  }

  /** Signed LEB128 of at most 33 bits (block types and heap types), as a JS number. */
  s33(): number {
    const at = this.pos;
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 5; i++) {
      const b = this.u8();
      result += (b & 0x7f) * mul;
      mul *= 128;
      if ((b & 0x80) === 0) return (b & 0x40) !== 0 ? result - mul : result;
    }
    return this.fail('s33 LEB128 too long', at);
  }

  /** Unsigned LEB128 up to 64 bits as a number (limits of memory64; precision past 2^53 is irrelevant here). */
  u64(): number {
    const at = this.pos;
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      const b = this.u8();
      result += (b & 0x7f) * mul;
      mul *= 128;
      if ((b & 0x80) === 0) return result;
    }
    return this.fail('u64 LEB128 too long', at);
  }

  skip(n: number): void {
    if (n < 0 || this.pos + n > this.end) this.fail(`${n} bytes past the end`);
    this.pos += n;
  }

  take(n: number): Uint8Array {
    const at = this.pos;
    this.skip(n);
    return this.bytes.subarray(at, at + n);
  }

  name(): string {
    const len = this.u32();
    const at = this.pos;
    try {
      return utf8.decode(this.take(len));
    } catch (err) {
      if (err instanceof GatewayError) throw err;
      return this.fail('name is not UTF-8', at);
    }
  }
}

/** A growable byte buffer for rewritten sections. */
export class ByteWriter {
  private buf: Uint8Array<ArrayBuffer>;
  length = 0;

  constructor(capacity = 256) {
    this.buf = new Uint8Array(capacity);
  }

  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }

  u8(b: number): this {
    this.room(1);
    this.buf[this.length++] = b;
    return this;
  }

  u32(value: number): this {
    let v = value >>> 0;
    do {
      const b = v & 0x7f;
      v >>>= 7;
      this.u8(v !== 0 ? b | 0x80 : b);
    } while (v !== 0);
    return this;
  }

  /** Signed LEB128 of a 32-bit integer. */
  s32(value: number): this {
    let v = value | 0;
    for (;;) {
      const b = v & 0x7f;
      v >>= 7;
      if ((v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0)) return this.u8(b);
      this.u8(b | 0x80);
    }
  }

  bytes(data: Uint8Array): this {
    this.room(data.length);
    this.buf.set(data, this.length);
    this.length += data.length;
    return this;
  }

  name(s: string): this {
    const data = new TextEncoder().encode(s);
    return this.u32(data.length).bytes(data);
  }

  /** A u32 length prefix, then the bytes (sections, function bodies, name subsections). */
  sized(data: Uint8Array): this {
    return this.u32(data.length).bytes(data);
  }

  finish(): Uint8Array<ArrayBuffer> {
    return this.buf.slice(0, this.length);
  }
}
