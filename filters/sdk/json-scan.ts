/**
 * The lexical half of the JSON parser: a cursor over UTF-8 bytes that reports the first error with
 * its position, and the scanning of the two tokens with a grammar of their own, strings (escapes,
 * surrogate pairs, UTF-8 validation) and numbers (RFC 8259 §6). The structure (values, objects,
 * arrays, nesting) is json-parser.ts, which extends `Scanner`.
 */

/** Where and why parsing stopped. `offset` is in bytes; `line` and `column` count from 1 (column in characters). */
export class JsonError {
  constructor(public message: string, public offset: i32, public line: i32, public column: i32) {}
  toString(): string {
    return this.message + " at line " + this.line.toString() + ", column " + this.column.toString();
  }
}

/** A cursor over `len` bytes at `start`; `error` is set at the first problem. */
export class Scanner {
  at: usize;
  end: usize;
  error: JsonError | null = null;
  /** Bytes of the string being decoded when it has escapes (raw memory, grown as needed). */
  buf: usize = 0;
  bufCap: usize = 0;

  /** `build` false: check only, decode nothing (strings scan as ""). */
  constructor(public start: usize, len: usize, public build: bool) {
    this.at = start;
    this.end = start + len;
  }

  /** Frees the string buffer; call once the scan is over. */
  release(): void {
    if (this.buf != 0) heap.free(this.buf);
    this.buf = 0;
    this.bufCap = 0;
  }

  /** Records the first error, at `at`. */
  fail(message: string): void {
    if (this.error !== null) return;
    // Line and column of `at`: columns count characters (UTF-8 lead bytes), from 1.
    let line = 1;
    let column = 1;
    for (let p = this.start; p < this.at; p++) {
      const b = load<u8>(p);
      if (b == 0x0a) {
        line++;
        column = 1;
      } else if ((b & 0xc0) != 0x80) {
        column++;
      }
    }
    this.error = new JsonError(message, <i32>(this.at - this.start), line, column);
  }

  /** Fails on the byte at `at` (or the end of input), naming it. */
  unexpected(): void {
    if (this.at >= this.end) {
      this.fail("unexpected end of input");
      return;
    }
    const b = load<u8>(this.at);
    this.fail(b >= 0x20 && b < 0x7f ? "unexpected character '" + String.fromCharCode(b) + "'" : "unexpected byte 0x" + hex2(b));
  }

  skipSpace(): void {
    while (this.at < this.end) {
      const b = load<u8>(this.at);
      if (b != 0x20 && b != 0x0a && b != 0x0d && b != 0x09) return;
      this.at++;
    }
  }

  /** Moves `at` past a number (at a '-' or a digit); false after an error. */
  scanNumber(): bool {
    if (load<u8>(this.at) == 0x2d) this.at++;
    if (this.at >= this.end || !isDigit(load<u8>(this.at))) return this.failed("expected a digit");
    if (load<u8>(this.at) == 0x30) {
      this.at++;
      if (this.at < this.end && isDigit(load<u8>(this.at))) return this.failed("leading zeros are not allowed");
    } else {
      while (this.at < this.end && isDigit(load<u8>(this.at))) this.at++;
    }
    if (this.at < this.end && load<u8>(this.at) == 0x2e) {
      this.at++;
      if (this.at >= this.end || !isDigit(load<u8>(this.at))) return this.failed("expected a digit after '.'");
      while (this.at < this.end && isDigit(load<u8>(this.at))) this.at++;
    }
    if (this.at < this.end && (load<u8>(this.at) | 0x20) == 0x65) {
      this.at++;
      if (this.at < this.end && (load<u8>(this.at) == 0x2b || load<u8>(this.at) == 0x2d)) this.at++;
      if (this.at >= this.end || !isDigit(load<u8>(this.at))) return this.failed("expected a digit in the exponent");
      while (this.at < this.end && isDigit(load<u8>(this.at))) this.at++;
    }
    return true;
  }

  /** Scans a string at `at` (an opening quote); null after an error. */
  scanString(): string | null {
    this.at++; // "
    const from = this.at;
    // Fast path: no escapes.
    while (this.at < this.end) {
      const b = load<u8>(this.at);
      if (b == 0x22) {
        if (!this.checkUtf8(from, this.at)) return null;
        const s = this.build ? String.UTF8.decodeUnsafe(from, this.at - from) : "";
        this.at++;
        return s;
      }
      if (b == 0x5c) break;
      if (b < 0x20) {
        this.fail("control character 0x" + hex2(b) + " in a string (escape it)");
        return null;
      }
      this.at++;
    }
    if (this.at >= this.end) {
      this.fail("unterminated string");
      return null;
    }
    // Slow path: copy the plain prefix, then decode escapes into the buffer.
    if (!this.checkUtf8(from, this.at)) return null;
    let len: usize = 0;
    len = this.append(len, from, this.at - from);
    while (true) {
      if (this.at >= this.end) {
        this.fail("unterminated string");
        return null;
      }
      const b = load<u8>(this.at);
      if (b == 0x22) {
        this.at++;
        return this.build ? String.UTF8.decodeUnsafe(this.buf, len) : "";
      }
      if (b < 0x20) {
        this.fail("control character 0x" + hex2(b) + " in a string (escape it)");
        return null;
      }
      if (b != 0x5c) {
        const runFrom = this.at;
        while (this.at < this.end) {
          const c = load<u8>(this.at);
          if (c == 0x22 || c == 0x5c || c < 0x20) break;
          this.at++;
        }
        if (!this.checkUtf8(runFrom, this.at)) return null;
        len = this.append(len, runFrom, this.at - runFrom);
        continue;
      }
      // An escape.
      this.at++;
      if (this.at >= this.end) {
        this.fail("unterminated string");
        return null;
      }
      const e = load<u8>(this.at);
      let out: u32 = 0;
      if (e == 0x22) out = 0x22;
      else if (e == 0x5c) out = 0x5c;
      else if (e == 0x2f) out = 0x2f;
      else if (e == 0x62) out = 0x08;
      else if (e == 0x66) out = 0x0c;
      else if (e == 0x6e) out = 0x0a;
      else if (e == 0x72) out = 0x0d;
      else if (e == 0x74) out = 0x09;
      else if (e == 0x75) {
        this.at--; // back to the backslash, for positions
        const cp = this.scanUnicodeEscape();
        if (cp < 0) return null;
        len = this.appendCodePoint(len, <u32>cp);
        continue;
      } else {
        this.at--;
        this.fail(e >= 0x20 && e < 0x7f ? "invalid escape '\\" + String.fromCharCode(e) + "' in a string" : "invalid escape in a string");
        return null;
      }
      this.at++;
      len = this.appendCodePoint(len, out);
    }
    return null; // not reached: the loop returns
  }

  /** `\uXXXX` (or a surrogate pair of them) at `at`; the code point, or -1 after an error. */
  scanUnicodeEscape(): i32 {
    const hi = this.hex4();
    if (hi < 0) return -1;
    if (hi >= 0xdc00 && hi < 0xe000) {
      this.at -= 6;
      this.fail("lone low surrogate in \\u escape");
      return -1;
    }
    if (hi < 0xd800 || hi >= 0xdc00) return hi;
    if (this.at + 1 < this.end && load<u8>(this.at) == 0x5c && load<u8>(this.at + 1) == 0x75) {
      const lo = this.hex4();
      if (lo < 0) return -1;
      if (lo >= 0xdc00 && lo < 0xe000) return 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
      this.at -= 6;
    }
    this.at -= 6;
    this.fail("lone high surrogate in \\u escape");
    return -1;
  }

  /** Reads `\uXXXX` at `at`; its value, or -1 after an error. */
  hex4(): i32 {
    if (this.at + 6 > this.end) {
      this.fail("invalid \\u escape (expected 4 hex digits)");
      return -1;
    }
    let v = 0;
    for (let i: usize = 2; i < 6; i++) {
      const d = hexValue(load<u8>(this.at + i));
      if (d < 0) {
        this.fail("invalid \\u escape (expected 4 hex digits)");
        return -1;
      }
      v = (v << 4) | d;
    }
    this.at += 6;
    return v;
  }

  /** Checks UTF-8 in [from, to); on an error points `at` at the bad byte. */
  checkUtf8(from: usize, to: usize): bool {
    let p = from;
    while (p < to) {
      const b = <u32>load<u8>(p);
      if (b < 0x80) {
        p++;
        continue;
      }
      let need: usize = 0;
      let min: u32 = 0;
      let cp: u32 = 0;
      if (b >= 0xc2 && b <= 0xdf) { need = 1; min = 0x80; cp = b & 0x1f; }
      else if (b >= 0xe0 && b <= 0xef) { need = 2; min = 0x800; cp = b & 0x0f; }
      else if (b >= 0xf0 && b <= 0xf4) { need = 3; min = 0x10000; cp = b & 0x07; }
      else return this.badUtf8(p);
      if (p + need >= to) return this.badUtf8(p);
      for (let i: usize = 1; i <= need; i++) {
        const c = <u32>load<u8>(p + i);
        if ((c & 0xc0) != 0x80) return this.badUtf8(p);
        cp = (cp << 6) | (c & 0x3f);
      }
      if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000)) return this.badUtf8(p);
      p += need + 1;
    }
    return true;
  }

  badUtf8(p: usize): bool {
    this.at = p;
    return this.failed("invalid UTF-8 in a string");
  }

  /** `fail`, for the scanners that answer false. */
  failed(message: string): bool {
    this.fail(message);
    return false;
  }

  /** Appends `n` raw bytes to the string buffer at `len`; the new length. */
  append(len: usize, src: usize, n: usize): usize {
    if (!this.build) return 0;
    this.reserve(len + n);
    memory.copy(this.buf + len, src, n);
    return len + n;
  }

  appendCodePoint(len: usize, c: u32): usize {
    if (!this.build) return 0;
    this.reserve(len + 4);
    const at = this.buf + len;
    if (c < 0x80) {
      store<u8>(at, <u8>c);
      return len + 1;
    }
    if (c < 0x800) {
      store<u8>(at, <u8>(0xc0 | (c >> 6)));
      store<u8>(at + 1, <u8>(0x80 | (c & 0x3f)));
      return len + 2;
    }
    if (c < 0x10000) {
      store<u8>(at, <u8>(0xe0 | (c >> 12)));
      store<u8>(at + 1, <u8>(0x80 | ((c >> 6) & 0x3f)));
      store<u8>(at + 2, <u8>(0x80 | (c & 0x3f)));
      return len + 3;
    }
    store<u8>(at, <u8>(0xf0 | (c >> 18)));
    store<u8>(at + 1, <u8>(0x80 | ((c >> 12) & 0x3f)));
    store<u8>(at + 2, <u8>(0x80 | ((c >> 6) & 0x3f)));
    store<u8>(at + 3, <u8>(0x80 | (c & 0x3f)));
    return len + 4;
  }

  reserve(size: usize): void {
    if (size <= this.bufCap) return;
    let cap = this.bufCap < 64 ? <usize>64 : this.bufCap;
    while (cap < size) cap <<= 1;
    this.buf = this.buf == 0 ? heap.alloc(cap) : heap.realloc(this.buf, cap);
    this.bufCap = cap;
  }
}

function isDigit(b: u8): bool {
  return b >= 0x30 && b <= 0x39;
}

function hexValue(b: u8): i32 {
  if (b >= 0x30 && b <= 0x39) return <i32>b - 0x30;
  const l = b | 0x20;
  if (l >= 0x61 && l <= 0x66) return <i32>l - 0x61 + 10;
  return -1;
}

function hex2(b: u8): string {
  const digits = "0123456789abcdef";
  return digits.charAt(b >> 4) + digits.charAt(b & 0x0f);
}
