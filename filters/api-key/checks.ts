/**
 * Checks shared by the filter's and the sync service's configurations: the JSON document itself,
 * header names, strings and integers, each failing with a message that names the offending entry.
 */
import { JsonValue, parseJson } from "../sdk/index";

/** A value that passed its check, or why it did not (`error` non-empty). */
export class Checked<T> {
  constructor(public value: T, public error: string) {}
}

/** The configuration as a JSON object, or why it is not one. `example` goes into the messages. */
export function loadObject(bytes: ArrayBuffer | null, example: string): Checked<JsonValue | null> {
  if (bytes === null || isBlank(bytes)) {
    return new Checked<JsonValue | null>(null, "configuration is empty; expected a JSON object such as " + example);
  }
  const parsed = parseJson(bytes);
  if (!parsed.ok) return new Checked<JsonValue | null>(null, "configuration is not valid JSON: " + parsed.error!.toString());
  const doc = parsed.value!;
  if (!doc.isObject()) {
    return new Checked<JsonValue | null>(null, "configuration must be a JSON object such as " + example + ", got " + doc.kindName());
  }
  return new Checked<JsonValue | null>(doc, "");
}

/** The first key of `doc` not in `known`, or null. */
export function unknownKey(doc: JsonValue, known: string[]): string | null {
  const keys = doc.keys();
  for (let i = 0; i < keys.length; i++) if (!known.includes(keys[i])) return keys[i];
  return null;
}

/** An HTTP header name (a token, not a pseudo-header), lower-cased. */
export function headerName(path: string, v: JsonValue): Checked<string> {
  if (!v.isString()) return new Checked<string>("", q(path) + " must be a header name (a string), got " + v.kindName());
  return headerNameText(path, v.asString());
}

/** The same check for a name given as text (an object key). */
export function headerNameText(path: string, name: string): Checked<string> {
  if (name.length == 0) return new Checked<string>("", q(path) + " must not be empty");
  for (let i = 0; i < name.length; i++) {
    if (!isTokenChar(name.charCodeAt(i))) {
      return new Checked<string>("", q(path) + " is not a valid header name: " + q(name) + " (names are letters, digits and !#$%&'*+-.^_`|~)");
    }
  }
  return new Checked<string>(name.toLowerCase(), "");
}

/** A non-empty string without control characters (it may end up in a header or a log line). */
export function text(path: string, v: JsonValue): Checked<string> {
  if (!v.isString()) return new Checked<string>("", q(path) + " must be a string, got " + v.kindName());
  const s = v.asString();
  if (s.length == 0) return new Checked<string>("", q(path) + " must not be empty");
  if (hasControl(s)) return new Checked<string>("", q(path) + " contains a control character");
  return new Checked<string>(s, "");
}

/** An integer in [min, max]. */
export function integer(path: string, v: JsonValue, min: i64, max: i64): Checked<i64> {
  if (!v.isNumber() || !v.isInteger() || v.asNumber() < <f64>min || v.asNumber() > <f64>max) {
    const got = v.isNumber() ? v.numberText() : v.kindName();
    return new Checked<i64>(0, q(path) + " must be an integer from " + min.toString() + " to " + max.toString() + ", got " + got);
  }
  return new Checked<i64>(<i64>v.asNumber(), "");
}

export function hasControl(s: string): bool {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c < 0x20 && c != 0x09) || c == 0x7f) return true;
  }
  return false;
}

function isTokenChar(c: i32): bool {
  if ((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)) return true;
  return c == 0x21 || c == 0x23 || c == 0x24 || c == 0x25 || c == 0x26 || c == 0x27 || c == 0x2a || c == 0x2b || c == 0x2d || c == 0x2e
    || c == 0x5e || c == 0x5f || c == 0x60 || c == 0x7c || c == 0x7e;
}

function isBlank(bytes: ArrayBuffer): bool {
  const view = Uint8Array.wrap(bytes);
  for (let i = 0; i < view.length; i++) {
    const b = view[i];
    if (b != 0x20 && b != 0x09 && b != 0x0a && b != 0x0d) return false;
  }
  return true;
}

/** A name in double quotes, for messages. */
export function q(s: string): string {
  return "\"" + s + "\"";
}
