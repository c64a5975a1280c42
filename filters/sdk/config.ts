/**
 * Reading a plugin configuration in `onConfigure`: the JSON document, its keys, and the values
 * most filters take (booleans, strings, string lists, bounded integers, HTTP tokens). Every
 * reader names the key (and index) at fault, so a mistake is worded the same way in every filter:
 *
 *   const loaded = readConfigObject(bytes, EXAMPLE);          // empty, not JSON, not an object
 *   if (!loaded.ok) return refuse(loaded.error);
 *   const doc = loaded.value!;
 *   const unknown = checkKeys(doc, ["limit", "strict"], "limit or strict");
 *   if (unknown.length > 0) return refuse(unknown);
 *   const limit = doc.get("limit");
 *   if (limit !== null) {
 *     const n = readInteger("limit", limit, 1, 1000);        // "limit" must be an integer from 1 to 1000, got "ten"
 *     if (!n.ok) return refuse(n.error);
 *   }
 *
 * Readers return a `Checked<T>` (value, or why not) or an error string ("" when fine); none of
 * them logs. Messages quote names and values with `quote` (plain double quotes, no escaping).
 */
import { JsonValue, parseJson } from "./json";

/** A value that passed its check, or why it did not (`error` non-empty; `value` is then neutral). */
export class Checked<T> {
  constructor(public value: T, public error: string) {}
  get ok(): bool {
    return this.error.length == 0;
  }
}

/** True when there is no configuration: none at all, or only JSON white space. */
export function isBlankConfiguration(bytes: ArrayBuffer | null): bool {
  if (bytes === null) return true;
  const view = Uint8Array.wrap(bytes);
  for (let i = 0; i < view.length; i++) {
    const b = view[i];
    if (b != 0x20 && b != 0x09 && b != 0x0a && b != 0x0d) return false;
  }
  return true;
}

/**
 * The configuration as a JSON object, or why it is not one: empty, not valid JSON (with the
 * parser's line and column), or another kind of value. `example` (compact JSON) goes into the
 * messages, so the operator sees a configuration that would load. A filter whose configuration is
 * optional tests `isBlankConfiguration` first.
 */
export function readConfigObject(bytes: ArrayBuffer | null, example: string): Checked<JsonValue | null> {
  if (isBlankConfiguration(bytes)) {
    return new Checked<JsonValue | null>(null, "configuration is empty; expected a JSON object such as " + example);
  }
  const parsed = parseJson(bytes!);
  if (!parsed.ok) return new Checked<JsonValue | null>(null, "configuration is not valid JSON: " + parsed.error!.toString());
  const doc = parsed.value!;
  if (!doc.isObject()) {
    return new Checked<JsonValue | null>(null, "configuration must be a JSON object such as " + example + ", got " + doc.kindName());
  }
  return new Checked<JsonValue | null>(doc, "");
}

/** `unknown key "<name>" (expected <expected>)`: `expected` is the list as the filter words it. */
export function unknownKeyError(name: string, expected: string): string {
  return "unknown key " + quote(name) + " (expected " + expected + ")";
}

/**
 * "" when every key of `object` is in `known`, else `unknownKeyError` for the first one that is
 * not, named `prefix + key` (`prefix` is the object's path and a dot, for nested objects).
 */
export function checkKeys(object: JsonValue, known: string[], expected: string, prefix: string = ""): string {
  const keys = object.keys();
  for (let i = 0; i < keys.length; i++) {
    if (!known.includes(keys[i])) return unknownKeyError(prefix + keys[i], expected);
  }
  return "";
}

/** `true` or `false`: `"<path>" must be true or false, got <kind>`. */
export function readBool(path: string, v: JsonValue): Checked<bool> {
  if (!v.isBool()) return new Checked<bool>(false, quote(path) + " must be true or false, got " + v.kindName());
  return new Checked<bool>(v.asBool(), "");
}

/** Any string: `"<path>" must be a string, got <kind>`. */
export function readString(path: string, v: JsonValue): Checked<string> {
  if (!v.isString()) return new Checked<string>("", quote(path) + " must be a string, got " + v.kindName());
  return new Checked<string>(v.asString(), "");
}

/** A string with at least one character: `readString`, then `"<path>" must not be empty`. */
export function readNonEmptyString(path: string, v: JsonValue): Checked<string> {
  const s = readString(path, v);
  if (s.ok && s.value.length == 0) return new Checked<string>("", quote(path) + " must not be empty");
  return s;
}

/**
 * An array of strings, as they are (empty ones and repeats included: the filter decides).
 * `"<path>" must be <what>, got <kind>` when not an array, `"<path>[i]" must be <itemWhat>, got
 * <kind>` for the first item that is not a string; `what` and `itemWhat` say what the strings
 * mean, e.g. "an array of header names" and "a header name (a string)".
 */
export function readStringArray(
  path: string, v: JsonValue, what: string = "an array of strings", itemWhat: string = "a string",
): Checked<string[] | null> {
  if (!v.isArray()) return new Checked<string[] | null>(null, quote(path) + " must be " + what + ", got " + v.kindName());
  const out = new Array<string>();
  for (let i = 0; i < v.length; i++) {
    const item = v.at(i)!;
    if (!item.isString()) {
      return new Checked<string[] | null>(null, quote(itemPath(path, i)) + " must be " + itemWhat + ", got " + item.kindName());
    }
    out.push(item.asString());
  }
  return new Checked<string[] | null>(out, "");
}

/**
 * A whole number in [min, max]: `"<path>" must be <what> from <min> to <max>, got <value>`, where
 * `what` says the unit ("a whole number of seconds") and the value is shown by `describeValue`.
 * JSON numbers are f64: bounds beyond 2^53 are not exact.
 */
export function readInteger(path: string, v: JsonValue, min: i64, max: i64, what: string = "an integer"): Checked<i64> {
  if (!v.isInteger() || v.asNumber() < <f64>min || v.asNumber() > <f64>max) {
    return new Checked<i64>(0, quote(path) + " must be " + what + " from " + min.toString() + " to " + max.toString() + ", got " + describeValue(v));
  }
  return new Checked<i64>(<i64>v.asNumber(), "");
}

/**
 * "" when `text` is an HTTP token (RFC 9110 §5.6.2: a method or a header name) or empty, else
 * `"<path>" has an invalid <what> "<text>": names are letters, digits and !#$%&'*+-.^_`|~`.
 * Emptiness is the caller's to word.
 */
export function checkToken(path: string, text: string, what: string): string {
  if (text.length == 0 || isToken(text)) return "";
  return quote(path) + " has an invalid " + what + " " + quote(text) + ": names are letters, digits and !#$%&'*+-.^_`|~";
}

/** True for a non-empty HTTP token. */
export function isToken(text: string): bool {
  if (text.length == 0) return false;
  for (let i = 0; i < text.length; i++) if (!isTokenChar(text.charCodeAt(i))) return false;
  return true;
}

/**
 * True when `s` has a C0 control character or DEL. HTAB is one unless `allowTab`: header values
 * may hold it (RFC 9110 §5.5), names and keys may not.
 */
export function hasControlCharacter(s: string, allowTab: bool = false): bool {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c < 0x20 && !(allowTab && c == 0x09)) || c == 0x7f) return true;
  }
  return false;
}

/** A value as messages show it after "got": strings quoted, numbers as written, other kinds by name. */
export function describeValue(v: JsonValue): string {
  if (v.isString()) return quote(v.asString());
  if (v.isNumber()) return v.numberText();
  return v.kindName();
}

/** `s` in double quotes, for messages (not escaped: use `quoteJsonString` to write JSON). */
export function quote(s: string): string {
  return "\"" + s + "\"";
}

/** The path of item `index` of the array at `path`: `allowOrigins[1]`. */
export function itemPath(path: string, index: i32): string {
  return path + "[" + index.toString() + "]";
}

function isTokenChar(c: i32): bool {
  if ((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)) return true;
  return c == 0x21 || c == 0x23 || c == 0x24 || c == 0x25 || c == 0x26 || c == 0x27 || c == 0x2a || c == 0x2b || c == 0x2d || c == 0x2e
    || c == 0x5e || c == 0x5f || c == 0x60 || c == 0x7c || c == 0x7e;
}
