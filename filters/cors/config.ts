/**
 * The cors filter's configuration, checked once in `onConfigure`:
 *
 *   {"allowOrigins": ["https://app.example.com"], "allowOriginPatterns": ["*.example.com"],
 *    "allowMethods": ["GET", "POST"], "allowHeaders": ["content-type", "authorization"],
 *    "exposeHeaders": ["x-request-id"], "allowCredentials": true, "maxAge": 600}
 *
 * Every problem is reported with the key (and index) at fault, e.g. `"allowOrigins[1]" …`. The
 * header values the filter sends are joined here, once.
 */
import { JsonValue, parseJson } from "../sdk/index";
import { OriginPattern, checkOrigin, parsePattern } from "./origins";

/** What a browser may do without asking, and so what `allowMethods` defaults to. */
const SAFELISTED_METHODS: string[] = ["GET", "HEAD", "POST"];
/** Chrome caps Access-Control-Max-Age at 2 hours, Firefox at 24 hours. */
const MAX_AGE_LIMIT: i64 = 86400;

export class CorsConfig {
  /** `allowOrigins` contains "*": any origin, answered with `Access-Control-Allow-Origin: *`. */
  anyOrigin: bool = false;
  origins: string[] = [];
  patterns: OriginPattern[] = [];
  methods: string[] = [];
  /** Lower-cased. */
  allowHeaders: string[] = [];
  allowCredentials: bool = false;
  /** -1: no Access-Control-Max-Age header. */
  maxAge: i64 = -1;

  /** The header values, joined once. */
  methodsValue: string = "";
  exposeValue: string = "";
  maxAgeValue: string = "";

  /** True when `origin` (a request's Origin header) is allowed. */
  allows(origin: string, schemeEnd: i32): bool {
    if (this.anyOrigin) return true;
    for (let i = 0; i < this.origins.length; i++) if (unchecked(this.origins[i]) == origin) return true;
    if (schemeEnd < 0) return false;
    for (let i = 0; i < this.patterns.length; i++) if (unchecked(this.patterns[i]).matches(origin, schemeEnd)) return true;
    return false;
  }

  allowsMethod(method: string): bool {
    for (let i = 0; i < this.methods.length; i++) if (unchecked(this.methods[i]) == method) return true;
    return false;
  }

  allowsHeader(lowerName: string): bool {
    for (let i = 0; i < this.allowHeaders.length; i++) if (unchecked(this.allowHeaders[i]) == lowerName) return true;
    return false;
  }
}

/** A configuration, or the reason it was refused. */
export class ConfigOutcome {
  constructor(public config: CorsConfig | null, public error: string) {}
}

const EXAMPLE = "{\"allowOrigins\":[\"https://app.example.com\"]}";
const KEYS = "allowOrigins, allowOriginPatterns, allowMethods, allowHeaders, exposeHeaders, allowCredentials or maxAge";

function refuse(error: string): ConfigOutcome {
  return new ConfigOutcome(null, error);
}

export function parseCorsConfig(bytes: ArrayBuffer | null): ConfigOutcome {
  if (bytes === null || isBlank(bytes)) return refuse("configuration is empty; expected a JSON object such as " + EXAMPLE);
  const parsed = parseJson(bytes);
  if (!parsed.ok) return refuse("configuration is not valid JSON: " + parsed.error!.toString());
  const doc = parsed.value!;
  if (!doc.isObject()) return refuse("configuration must be a JSON object such as " + EXAMPLE + ", got " + doc.kindName());
  const config = new CorsConfig();
  let methods: string[] = SAFELISTED_METHODS;
  let expose: string[] = [];
  let originsText: string[] = [];
  const keys = doc.keys();
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i];
    const value = doc.get(key)!;
    const list = new StringList();
    if (key == "allowOrigins") {
      if (!readStrings(key, value, list)) return refuse(list.error);
      originsText = list.items;
    } else if (key == "allowOriginPatterns") {
      if (!readStrings(key, value, list)) return refuse(list.error);
      for (let j = 0; j < list.items.length; j++) {
        const why = new Array<string>();
        const pattern = parsePattern(list.items[j], why);
        if (pattern === null) return refuse(q(at(key, j)) + " " + q(list.items[j]) + " " + why[0]);
        config.patterns.push(pattern);
      }
    } else if (key == "allowMethods") {
      if (!readStrings(key, value, list)) return refuse(list.error);
      for (let j = 0; j < list.items.length; j++) {
        const error = checkToken(at(key, j), list.items[j], "method");
        if (error.length > 0) return refuse(error);
      }
      if (list.items.length == 0) return refuse(q(key) + " is empty: list the methods cross-origin requests may use");
      methods = list.items;
    } else if (key == "allowHeaders" || key == "exposeHeaders") {
      if (!readStrings(key, value, list)) return refuse(list.error);
      for (let j = 0; j < list.items.length; j++) {
        const error = checkToken(at(key, j), list.items[j], "header name");
        if (error.length > 0) return refuse(error);
        list.items[j] = list.items[j].toLowerCase();
      }
      if (key == "allowHeaders") config.allowHeaders = list.items;
      else expose = list.items;
    } else if (key == "allowCredentials") {
      if (!value.isBool()) return refuse(q(key) + " must be true or false, got " + value.kindName());
      config.allowCredentials = value.asBool();
    } else if (key == "maxAge") {
      if (!value.isInteger() || value.asNumber() < 0 || value.asNumber() > <f64>MAX_AGE_LIMIT) {
        return refuse(q(key) + " must be a whole number of seconds from 0 to " + MAX_AGE_LIMIT.toString() + ", got "
          + (value.isNumber() ? value.numberText() : value.kindName()));
      }
      config.maxAge = <i64>value.asNumber();
    } else {
      return refuse("unknown key " + q(key) + " (expected " + KEYS + ")");
    }
  }
  const error = readOrigins(originsText, config);
  if (error.length > 0) return refuse(error);
  if (!config.anyOrigin && config.origins.length == 0 && config.patterns.length == 0) {
    return refuse("configuration allows no origin; expected \"allowOrigins\" and/or \"allowOriginPatterns\", as in " + EXAMPLE);
  }
  config.methods = methods;
  config.methodsValue = methods.join(", ");
  config.exposeValue = expose.join(", ");
  if (config.maxAge >= 0) config.maxAgeValue = config.maxAge.toString();
  return new ConfigOutcome(config, "");
}

/** Checks `allowOrigins` once every key is known (the "*" rule depends on `allowCredentials`). */
function readOrigins(texts: string[], config: CorsConfig): string {
  for (let j = 0; j < texts.length; j++) {
    const origin = texts[j].toLowerCase();
    if (origin == "*") {
      if (config.allowCredentials) {
        return "\"allowOrigins\" cannot contain \"*\" when \"allowCredentials\" is true: browsers refuse a wildcard origin "
          + "on requests with credentials; list the origins instead";
      }
      config.anyOrigin = true;
      continue;
    }
    const why = checkOrigin(origin);
    if (why.length > 0) {
      return q(at("allowOrigins", j)) + " must be an origin such as \"https://app.example.com\" or \"*\", got " + q(texts[j]) + ": it " + why;
    }
    config.origins.push(origin);
  }
  return "";
}

/** The strings of an array, or why the value is not an array of distinct non-empty strings. */
class StringList {
  items: string[] = [];
  error: string = "";
}

function readStrings(key: string, value: JsonValue, out: StringList): bool {
  if (!value.isArray()) {
    out.error = q(key) + " must be an array of strings, got " + value.kindName();
    return false;
  }
  for (let i = 0; i < value.length; i++) {
    const item = value.at(i)!;
    if (!item.isString()) {
      out.error = q(at(key, i)) + " must be a string, got " + item.kindName();
      return false;
    }
    const text = item.asString();
    if (text.length == 0) {
      out.error = q(at(key, i)) + " is empty";
      return false;
    }
    for (let j = 0; j < out.items.length; j++) {
      if (out.items[j].toLowerCase() == text.toLowerCase()) {
        out.error = q(key) + " lists " + q(text) + " twice";
        return false;
      }
    }
    out.items.push(key == "allowOriginPatterns" ? text.toLowerCase() : text);
  }
  return true;
}

/** A method or header name: an HTTP token; "*" is refused (list the names instead). */
function checkToken(path: string, text: string, what: string): string {
  if (text == "*") return q(path) + " is \"*\": wildcards are not supported, list each " + what;
  for (let i = 0; i < text.length; i++) {
    if (!isTokenChar(text.charCodeAt(i))) {
      return q(path) + " has an invalid " + what + " " + q(text) + ": names are letters, digits and !#$%&'*+-.^_`|~";
    }
  }
  return "";
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

function at(key: string, index: i32): string {
  return key + "[" + index.toString() + "]";
}

function q(s: string): string {
  return "\"" + s + "\"";
}
