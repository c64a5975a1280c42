/**
 * The JSON value model of json.ts: what `parseJson` builds, and what a filter can build itself
 * and `stringify()` (for JSON bodies of local replies, for instance).
 */

export enum JsonKind {
  Null = 0,
  Bool = 1,
  Number = 2,
  String = 3,
  Array = 4,
  Object = 5,
}

/** A parsed JSON value. The `as*` accessors return a neutral value ("", 0, false) for other kinds. */
export class JsonValue {
  private boolValue: bool = false;
  private numberValue: f64 = 0;
  /** The string, or the number's source text. */
  private text: string = "";
  private items: JsonValue[] | null = null;
  private keyList: string[] | null = null;
  private fields: Map<string, JsonValue> | null = null;

  constructor(public readonly kind: JsonKind) {}

  static nullValue(): JsonValue {
    return new JsonValue(JsonKind.Null);
  }
  static fromBool(b: bool): JsonValue {
    const v = new JsonValue(JsonKind.Bool);
    v.boolValue = b;
    return v;
  }
  /** A number; `text` is how it is written back (defaults to the shortest decimal form). */
  static fromNumber(n: f64, text: string = ""): JsonValue {
    const v = new JsonValue(JsonKind.Number);
    v.numberValue = n;
    v.text = text.length > 0 ? text : formatNumber(n);
    return v;
  }
  static fromString(s: string): JsonValue {
    const v = new JsonValue(JsonKind.String);
    v.text = s;
    return v;
  }
  static newArray(): JsonValue {
    const v = new JsonValue(JsonKind.Array);
    v.items = [];
    return v;
  }
  static newObject(): JsonValue {
    const v = new JsonValue(JsonKind.Object);
    v.keyList = [];
    v.fields = new Map<string, JsonValue>();
    return v;
  }

  isNull(): bool { return this.kind == JsonKind.Null; }
  isBool(): bool { return this.kind == JsonKind.Bool; }
  isNumber(): bool { return this.kind == JsonKind.Number; }
  isString(): bool { return this.kind == JsonKind.String; }
  isArray(): bool { return this.kind == JsonKind.Array; }
  isObject(): bool { return this.kind == JsonKind.Object; }

  asBool(): bool {
    return this.kind == JsonKind.Bool && this.boolValue;
  }
  asNumber(): f64 {
    return this.kind == JsonKind.Number ? this.numberValue : 0;
  }
  /** True for a number with no fractional part that fits an i64 exactly (|n| ≤ 2^53). */
  isInteger(): bool {
    const n = this.numberValue;
    return this.kind == JsonKind.Number && Math.floor(n) == n && Math.abs(n) <= 9007199254740992.0;
  }
  asString(): string {
    return this.kind == JsonKind.String ? this.text : "";
  }
  /** A number as it was written in the source (`1e3`, `10`, `0.50`). */
  numberText(): string {
    return this.kind == JsonKind.Number ? this.text : "";
  }

  /** Items of an array, or keys of an object; 0 otherwise. */
  get length(): i32 {
    if (this.kind == JsonKind.Array) return this.items!.length;
    if (this.kind == JsonKind.Object) return this.keyList!.length;
    return 0;
  }
  /** Array item `i` (null when out of range or not an array). */
  at(i: i32): JsonValue | null {
    if (this.kind != JsonKind.Array || i < 0 || i >= this.items!.length) return null;
    return unchecked(this.items![i]);
  }
  push(item: JsonValue): void {
    if (this.kind == JsonKind.Array) this.items!.push(item);
  }
  /** Object keys in first-appearance order (empty when not an object). */
  keys(): string[] {
    return this.kind == JsonKind.Object ? this.keyList! : [];
  }
  has(key: string): bool {
    return this.kind == JsonKind.Object && this.fields!.has(key);
  }
  /** Object member `key`, or null. */
  get(key: string): JsonValue | null {
    if (this.kind != JsonKind.Object || !this.fields!.has(key)) return null;
    return this.fields!.get(key);
  }
  set(key: string, value: JsonValue): void {
    if (this.kind != JsonKind.Object) return;
    if (!this.fields!.has(key)) this.keyList!.push(key);
    this.fields!.set(key, value);
  }

  /** "null", "a boolean", "a number", "a string", "an array" or "an object", for messages. */
  kindName(): string {
    return kindName(this.kind);
  }

  /** Compact JSON text. */
  stringify(): string {
    switch (this.kind) {
      case JsonKind.Null: return "null";
      case JsonKind.Bool: return this.boolValue ? "true" : "false";
      case JsonKind.Number: return this.text;
      case JsonKind.String: return quoteJsonString(this.text);
      case JsonKind.Array: {
        let out = "[";
        const items = this.items!;
        for (let i = 0; i < items.length; i++) out += (i > 0 ? "," : "") + unchecked(items[i]).stringify();
        return out + "]";
      }
      default: {
        let out = "{";
        const keys = this.keyList!;
        for (let i = 0; i < keys.length; i++) {
          const k = unchecked(keys[i]);
          out += (i > 0 ? "," : "") + quoteJsonString(k) + ":" + this.fields!.get(k).stringify();
        }
        return out + "}";
      }
    }
  }
}

export function kindName(kind: JsonKind): string {
  switch (kind) {
    case JsonKind.Null: return "null";
    case JsonKind.Bool: return "a boolean";
    case JsonKind.Number: return "a number";
    case JsonKind.String: return "a string";
    case JsonKind.Array: return "an array";
    default: return "an object";
  }
}

function formatNumber(n: f64): string {
  if (Math.floor(n) == n && Math.abs(n) < 1e15) return (<i64>n).toString();
  return n.toString();
}

/** `s` as a JSON string literal, quotes included. */
export function quoteJsonString(s: string): string {
  let plain = true;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c == 0x22 || c == 0x5c) {
      plain = false;
      break;
    }
  }
  if (plain) return "\"" + s + "\"";
  const parts = new Array<string>();
  let from = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let esc: string | null = null;
    if (c == 0x22) esc = "\\\"";
    else if (c == 0x5c) esc = "\\\\";
    else if (c == 0x0a) esc = "\\n";
    else if (c == 0x0d) esc = "\\r";
    else if (c == 0x09) esc = "\\t";
    else if (c == 0x08) esc = "\\b";
    else if (c == 0x0c) esc = "\\f";
    else if (c < 0x20) esc = "\\u00" + (c < 0x10 ? "0" : "") + c.toString(16);
    if (esc !== null) {
      parts.push(s.substring(from, i));
      parts.push(esc);
      from = i + 1;
    }
  }
  parts.push(s.substring(from));
  return "\"" + parts.join("") + "\"";
}

