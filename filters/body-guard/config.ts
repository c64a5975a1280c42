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
import { JsonValue, parseJson } from "../sdk/index";
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

function refuse(error: string): ConfigOutcome {
  return new ConfigOutcome(null, error);
}

export function parseBodyGuardConfig(bytes: ArrayBuffer | null): ConfigOutcome {
  if (bytes === null || isBlank(bytes)) return refuse("configuration is empty; expected a JSON object such as " + EXAMPLE);
  const parsed = parseJson(bytes);
  if (!parsed.ok) return refuse("configuration is not valid JSON: " + parsed.error!.toString());
  const doc = parsed.value!;
  if (!doc.isObject()) return refuse("configuration must be a JSON object such as " + EXAMPLE + ", got " + doc.kindName());
  const config = new BodyGuardConfig();
  const keys = doc.keys();
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i];
    if (key != "maxRequestBytes" && key != "jsonContentTypes" && key != "redact" && key != "replacement" && key != "redactContentTypes") {
      return refuse("unknown key " + q(key) + " (expected maxRequestBytes, jsonContentTypes, redact, replacement or redactContentTypes)");
    }
  }
  let error = "";
  const limit = doc.get("maxRequestBytes");
  if (limit !== null) {
    if (!limit.isNumber() || !limit.isInteger() || limit.asNumber() < 0 || limit.asNumber() > <f64>MAX_LIMIT) {
      return refuse("\"maxRequestBytes\" must be a whole number of bytes from 0 to " + MAX_LIMIT.toString() + ", got " + describe(limit));
    }
    config.maxRequestBytes = <i64>limit.asNumber();
  }
  const json = doc.get("jsonContentTypes");
  if (json !== null) {
    error = readMediaRanges("jsonContentTypes", json, config.jsonContentTypes);
    if (error.length > 0) return refuse(error);
  }
  let replacement = DEFAULT_REPLACEMENT;
  const defaultReplacement = doc.get("replacement");
  if (defaultReplacement !== null) {
    if (!defaultReplacement.isString()) return refuse("\"replacement\" must be a string, got " + defaultReplacement.kindName());
    replacement = defaultReplacement.asString();
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
  if (!value.isArray()) return q(path) + " must be an array of media types such as \"application/json\" or \"text/*\", got " + value.kindName();
  for (let i = 0; i < value.length; i++) {
    const item = value.at(i)!;
    const entry = path + "[" + i.toString() + "]";
    if (!item.isString()) return q(entry) + " must be a media type (a string), got " + item.kindName();
    const range = checkMediaRange(item.asString());
    if (range.length == 0) {
      return q(entry) + " is not a media type: " + q(item.asString())
        + " (expected type/subtype, type/* or */*, without parameters)";
    }
    out.push(range);
  }
  return "";
}

function readPatterns(value: JsonValue, defaultReplacement: string, out: Pattern[]): string {
  if (!value.isArray()) return "\"redact\" must be an array of patterns (strings or {\"pattern\": …, \"replacement\": …}), got " + value.kindName();
  for (let i = 0; i < value.length; i++) {
    const item = value.at(i)!;
    const entry = "redact[" + i.toString() + "]";
    let source: JsonValue | null = item;
    let replacement = defaultReplacement;
    if (item.isObject()) {
      const keys = item.keys();
      for (let k = 0; k < keys.length; k++) {
        if (keys[k] != "pattern" && keys[k] != "replacement") {
          return "unknown key " + q(entry + "." + keys[k]) + " (expected pattern or replacement)";
        }
      }
      source = item.get("pattern");
      if (source === null) return q(entry) + " has no \"pattern\"";
      const own = item.get("replacement");
      if (own !== null) {
        if (!own.isString()) return q(entry + ".replacement") + " must be a string, got " + own.kindName();
        replacement = own.asString();
      }
    } else if (!item.isString()) {
      return q(entry) + " must be a pattern (a string) or an object {\"pattern\": …, \"replacement\": …}, got " + item.kindName();
    }
    const where = item.isObject() ? entry + ".pattern" : entry;
    if (!source!.isString()) return q(where) + " must be a string, got " + source!.kindName();
    const compiled = compilePattern(source!.asString());
    if (compiled.elements === null) return q(where) + " is not a valid pattern: " + q(source!.asString()) + " " + compiled.error;
    out.push(new Pattern(source!.asString(), compiled.elements!, String.UTF8.encode(replacement)));
  }
  return "";
}

/** A value for messages: numbers as written, other kinds by name. */
function describe(v: JsonValue): string {
  return v.isNumber() ? v.numberText() : v.kindName();
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
function q(s: string): string {
  return "\"" + s + "\"";
}
