/**
 * The parser behind json.ts: recursive descent over UTF-8 bytes, one pass, first error wins. In
 * validate mode (`build` false) it checks the same grammar without building values. Strings,
 * numbers and error positions are scanned by json-scan.ts; this file is the structure.
 */
import { JsonKind, JsonValue } from "./json-value";
import { Scanner } from "./json-scan";

/** Deepest nesting of arrays and objects accepted. */
export const MAX_DEPTH: i32 = 256;

/** Returned for every value when only validating, so validation allocates nothing per value. */
const VALIDATED = new JsonValue(JsonKind.Null);

/** One parse of `len` bytes at `start`; `error` is set at the first problem. */
export class Parser extends Scanner {
  depth: i32 = 0;

  constructor(start: usize, len: usize, build: bool) {
    super(start, len, build);
  }

  parseDocument(): JsonValue | null {
    this.skipSpace();
    const value = this.parseValue();
    if (this.error === null) {
      this.skipSpace();
      if (this.at < this.end) this.fail("unexpected content after the JSON value");
    }
    this.release();
    return value;
  }

  /** `fail`, for the parsers that answer a value. */
  stop(message: string): JsonValue | null {
    this.fail(message);
    return null;
  }

  parseValue(): JsonValue | null {
    if (this.at >= this.end) return this.stop("unexpected end of input");
    const b = load<u8>(this.at);
    if (b == 0x7b) return this.parseObject();
    if (b == 0x5b) return this.parseArray();
    if (b == 0x22) {
      const s = this.scanString();
      if (s === null) return null;
      return this.build ? JsonValue.fromString(s) : VALIDATED;
    }
    if (b == 0x2d || (b >= 0x30 && b <= 0x39)) return this.parseNumber();
    if (b == 0x74) return this.literal("true", JsonValue.fromBool(true));
    if (b == 0x66) return this.literal("false", JsonValue.fromBool(false));
    if (b == 0x6e) return this.literal("null", JsonValue.nullValue());
    this.unexpected();
    return null;
  }

  literal(word: string, value: JsonValue): JsonValue | null {
    for (let i = 0; i < word.length; i++) {
      if (this.at >= this.end || <i32>load<u8>(this.at) != word.charCodeAt(i)) {
        return this.stop("invalid literal (expected '" + word + "')");
      }
      this.at++;
    }
    return this.build ? value : VALIDATED;
  }

  enter(): bool {
    if (++this.depth > MAX_DEPTH) {
      this.fail("nesting deeper than " + MAX_DEPTH.toString() + " levels");
      return false;
    }
    return true;
  }

  parseObject(): JsonValue | null {
    if (!this.enter()) return null;
    this.at++; // {
    const obj = this.build ? JsonValue.newObject() : VALIDATED;
    this.skipSpace();
    if (this.at < this.end && load<u8>(this.at) == 0x7d) {
      this.at++;
      this.depth--;
      return obj;
    }
    while (true) {
      if (this.at >= this.end) return this.stop("unexpected end of input");
      if (load<u8>(this.at) != 0x22) return this.stop("expected a string key in an object");
      const key = this.scanString();
      if (key === null) return null;
      this.skipSpace();
      if (this.at >= this.end || load<u8>(this.at) != 0x3a) return this.stop("expected ':' after an object key");
      this.at++;
      this.skipSpace();
      const value = this.parseValue();
      if (value === null) return null;
      if (this.build) obj.set(key, value);
      this.skipSpace();
      if (this.at >= this.end) return this.stop("unexpected end of input");
      const b = load<u8>(this.at++);
      if (b == 0x7d) break;
      if (b != 0x2c) {
        this.at--;
        return this.stop("expected ',' or '}' in an object");
      }
      this.skipSpace();
    }
    this.depth--;
    return obj;
  }

  parseArray(): JsonValue | null {
    if (!this.enter()) return null;
    this.at++; // [
    const arr = this.build ? JsonValue.newArray() : VALIDATED;
    this.skipSpace();
    if (this.at < this.end && load<u8>(this.at) == 0x5d) {
      this.at++;
      this.depth--;
      return arr;
    }
    while (true) {
      const value = this.parseValue();
      if (value === null) return null;
      if (this.build) arr.push(value);
      this.skipSpace();
      if (this.at >= this.end) return this.stop("unexpected end of input");
      const b = load<u8>(this.at++);
      if (b == 0x5d) break;
      if (b != 0x2c) {
        this.at--;
        return this.stop("expected ',' or ']' in an array");
      }
      this.skipSpace();
    }
    this.depth--;
    return arr;
  }

  /** A number keeps its source text, so `2` is written back as `2` and `1e3` as `1e3`. */
  parseNumber(): JsonValue | null {
    const from = this.at;
    if (!this.scanNumber()) return null;
    if (!this.build) return VALIDATED;
    const text = String.UTF8.decodeUnsafe(from, this.at - from);
    return JsonValue.fromNumber(parseFloat(text), text);
  }
}
