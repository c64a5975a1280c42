/**
 * The body-guard filter's configuration, validated once in `onConfigure`. Each feature is on when
 * its key is present:
 *
 *   {"maxRequestBytes": 65536,
 *    "jsonContentTypes": ["application/json"],
 *    "redact": ["secret", {"pattern": "#{4}-#{4}-#{4}-#{4}", "replacement": "[CARD]"}],
 *    "replacement": "[REDACTED]",
 *    "redactContentTypes": ["text/*", "application/json"]}
 *
 * Every problem is reported with the path of the offending entry.
 */
import {
  JsonValue, checkKeys, itemPath, quote as q, readConfigObject, readInteger, readString, readStringArray,
} from "../sdk/index";
import { checkMediaRange } from "./media-type";
import { Pattern, compilePattern } from "./pattern";

export const DEFAULT_REPLACEMENT = "[REDACTED]";
/** The largest size limit: request bodies are counted in 32 bits by the ABI. */
export const MAX_LIMIT: i64 = 4294967295;

export class BodyGuardConfig {
  /** Largest request body in bytes; -1: no limit. */
  maxRequestBytes: i64 = -1;
  /** Request media ranges whose bodies must be well-formed JSON (empty: no check). */
  jsonContentTypes: string[] = [];
  /** Patterns to redact from response bodies, in the order they are tried (empty: no redaction). */
  redact: Pattern[] = [];
  /** Response media ranges that are redacted. */
  redactContentTypes: string[] = ["text/*", "application/json"];
}

/** A configuration, or the reason it was refused. */
export class ConfigOutcome {
  constructor(public config: BodyGuardConfig | null, public error: string) {}
}

const EXAMPLE = "{\"maxRequestBytes\":65536,\"jsonContentTypes\":[\"application/json\"],\"redact\":[\"#{4}-#{4}-#{4}-#{4}\"]}";
const KNOWN = ["maxRequestBytes", "jsonContentTypes", "redact", "replacement", "redactContentTypes"];

function refuse(error: string): ConfigOutcome {
  return new ConfigOutcome(null, error);
}

export function parseBodyGuardConfig(bytes: ArrayBuffer | null): ConfigOutcome {
  const loaded = readConfigObject(bytes, EXAMPLE);
  if (!loaded.ok) return refuse(loaded.error);
  const doc = loaded.value!;
  let error = checkKeys(doc, KNOWN, "maxRequestBytes, jsonContentTypes, redact, replacement or redactContentTypes");
  if (error.length > 0) return refuse(error);
  const config = new BodyGuardConfig();
  const limit = doc.get("maxRequestBytes");
  if (limit !== null) {
    const size = readInteger("maxRequestBytes", limit, 0, MAX_LIMIT, "a whole number of bytes");
    if (!size.ok) return refuse(size.error);
    config.maxRequestBytes = size.value;
  }
  const json = doc.get("jsonContentTypes");
  if (json !== null) {
    error = readMediaRanges("jsonContentTypes", json, config.jsonContentTypes);
    if (error.length > 0) return refuse(error);
  }
  let replacement = DEFAULT_REPLACEMENT;
  const defaultReplacement = doc.get("replacement");
  if (defaultReplacement !== null) {
    const text = readString("replacement", defaultReplacement);
    if (!text.ok) return refuse(text.error);
    replacement = text.value;
  }
  const redact = doc.get("redact");
  if (redact !== null) {
    error = readPatterns(redact, replacement, config.redact);
    if (error.length > 0) return refuse(error);
  }
  const types = doc.get("redactContentTypes");
  if (types !== null) {
    config.redactContentTypes = [];
    error = readMediaRanges("redactContentTypes", types, config.redactContentTypes);
    if (error.length > 0) return refuse(error);
    if (config.redactContentTypes.length == 0) return refuse("\"redactContentTypes\" is empty: nothing would be redacted");
  }
  if (config.redact.length == 0 && (defaultReplacement !== null || types !== null)) {
    return refuse((defaultReplacement !== null ? "\"replacement\"" : "\"redactContentTypes\"") + " is set but \"redact\" has no pattern");
  }
  if (config.maxRequestBytes < 0 && config.jsonContentTypes.length == 0 && config.redact.length == 0) {
    return refuse("configuration enables nothing; set maxRequestBytes, jsonContentTypes or redact, as in " + EXAMPLE);
  }
  return new ConfigOutcome(config, "");
}

function readMediaRanges(path: string, value: JsonValue, out: string[]): string {
  const list = readStringArray(path, value, "an array of media types such as \"application/json\" or \"text/*\"", "a media type (a string)");
  if (!list.ok) return list.error;
  const items = list.value!;
  for (let i = 0; i < items.length; i++) {
    const range = checkMediaRange(items[i]);
    if (range.length == 0) {
      return q(itemPath(path, i)) + " is not a media type: " + q(items[i]) + " (expected type/subtype, type/* or */*, without parameters)";
    }
    out.push(range);
  }
  return "";
}

function readPatterns(value: JsonValue, defaultReplacement: string, out: Pattern[]): string {
  if (!value.isArray()) return "\"redact\" must be an array of patterns (strings or {\"pattern\": …, \"replacement\": …}), got " + value.kindName();
  for (let i = 0; i < value.length; i++) {
    const item = value.at(i)!;
    const entry = itemPath("redact", i);
    let source: JsonValue | null = item;
    let replacement = defaultReplacement;
    if (item.isObject()) {
      const unknown = checkKeys(item, ["pattern", "replacement"], "pattern or replacement", entry + ".");
      if (unknown.length > 0) return unknown;
      source = item.get("pattern");
      if (source === null) return q(entry) + " has no \"pattern\"";
      const own = item.get("replacement");
      if (own !== null) {
        const ownText = readString(entry + ".replacement", own);
        if (!ownText.ok) return ownText.error;
        replacement = ownText.value;
      }
    } else if (!item.isString()) {
      return q(entry) + " must be a pattern (a string) or an object {\"pattern\": …, \"replacement\": …}, got " + item.kindName();
    }
    const where = item.isObject() ? entry + ".pattern" : entry;
    const text = readString(where, source!);
    if (!text.ok) return text.error;
    const compiled = compilePattern(text.value);
    if (compiled.elements === null) return q(where) + " is not a valid pattern: " + q(text.value) + " " + compiled.error;
    out.push(new Pattern(text.value, compiled.elements!, String.UTF8.encode(replacement)));
  }
  return "";
}
