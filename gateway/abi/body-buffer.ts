/**
 * A body (or TCP data, or callout body) buffer as a guest reads and edits it through
 * `proxy_get_buffer_bytes` / `proxy_set_buffer_bytes`. Chunks are appended as they arrive and joined
 * only when the guest reads or edits across them.
 */
import { Status } from './enums.js';

const EMPTY = Buffer.alloc(0);

export class BodyBuffer {
  private chunks: Buffer[] = [];
  private joined: Buffer | null = null;
  length = 0;
  /** A guest changed the content (set_buffer_bytes): its length may differ from what was announced. */
  edited = false;

  constructor(initial?: Uint8Array) {
    if (initial && initial.length > 0) this.append(initial);
  }

  append(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    if (this.joined !== null) {
      this.chunks = [this.joined];
      this.joined = null;
    }
    this.chunks.push(buf);
    this.length += buf.length;
  }

  /** The whole content as one Buffer (joins chunks once, then caches). */
  bytes(): Buffer {
    if (this.joined === null) {
      this.joined = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.length);
      this.chunks = [];
    }
    return this.joined;
  }

  /** Bytes [start, start+len) with the clamping rules of §6.4 (callers pass in-range values). */
  slice(start: number, len: number): Buffer {
    return this.bytes().subarray(start, start + len);
  }

  /**
   * Splice: remove `size` bytes at `start` and insert `data` (reference §6.5). `start >= length`
   * appends, (0, 0) prepends, (0, >= length) replaces; a mid-buffer splice is supported too,
   * which Envoy rejects but no SDK helper emits.
   */
  splice(start: number, size: number, data: Uint8Array): Status {
    const cur = this.bytes();
    const insert = Buffer.from(data);
    if (start >= cur.length) {
      this.set(Buffer.concat([cur, insert]));
    } else {
      const end = Math.min(cur.length, start + size);
      this.set(Buffer.concat([cur.subarray(0, start), insert, cur.subarray(end)]));
    }
    this.edited = true;
    return Status.OK;
  }

  /** Replaces the whole content. */
  set(data: Uint8Array): void {
    this.chunks = [];
    this.joined = Buffer.isBuffer(data) ? data : Buffer.from(data);
    this.length = this.joined.length;
  }

  /** The whole content, leaving the buffer empty. */
  take(): Buffer {
    const bytes = this.length === 0 ? EMPTY : this.bytes();
    this.clear();
    return bytes;
  }

  clear(): void {
    this.chunks = [];
    this.joined = null;
    this.length = 0;
  }
}
