/**
 * A small, strict JSON parser (RFC 8259) for filter configurations and request bodies. It reads
 * UTF-8 bytes, so positions are exact byte offsets, and reports the first error with its line and
 * column:
 *
 *   const r = parseJson(getPluginConfiguration()!);
 *   if (!r.ok) { logCritical("bad configuration: " + r.error!.toString()); return false; }
 *   const limit = r.value!.get("limit");
 *
 * `validateJson` checks well-formedness without building values (no allocation per value).
 * Strictness: no comments, no trailing commas, no leading zeros, no lone surrogates, valid UTF-8
 * only, nesting at most `MAX_DEPTH` levels. Duplicate object keys: the last value wins.
 *
 * The value model is in json-value.ts, the parser in json-parser.ts (structure) and json-scan.ts
 * (strings, numbers, error positions).
 */
import { Parser } from "./json-parser";
import { JsonError } from "./json-scan";
import { JsonValue } from "./json-value";

export { JsonKind, JsonValue, kindName, quoteJsonString } from "./json-value";
export { MAX_DEPTH } from "./json-parser";
export { JsonError } from "./json-scan";

/** A parse: `value` when `ok`, else `error`. */
export class JsonResult {
  constructor(public value: JsonValue | null, public error: JsonError | null) {}
  get ok(): bool {
    return this.error === null;
  }
}

/** Parses UTF-8 JSON text. */
export function parseJson(input: ArrayBuffer): JsonResult {
  const p = new Parser(changetype<usize>(input), <usize>input.byteLength, true);
  const value = p.parseDocument();
  return new JsonResult(p.error === null ? value : null, p.error);
}

/** Parses JSON from a string (encoded to UTF-8 first, so offsets are UTF-8 byte offsets). */
export function parseJsonString(text: string): JsonResult {
  return parseJson(String.UTF8.encode(text));
}

/** Checks that `len` bytes at `ptr` are one well-formed JSON value; null when they are. */
export function validateJson(ptr: usize, len: usize): JsonError | null {
  const p = new Parser(ptr, len, false);
  p.parseDocument();
  return p.error;
}
