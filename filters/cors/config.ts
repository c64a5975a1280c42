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
import {
  Checked, JsonValue, checkToken, itemPath as at, quote as q, readBool, readConfigObject, readInteger, readStringArray, unknownKeyError,
} from "../sdk/index";
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
  const loaded = readConfigObject(bytes, EXAMPLE);
  if (!loaded.ok) return refuse(loaded.error);
  const doc = loaded.value!;
  const config = new CorsConfig();
  let methods: string[] = SAFELISTED_METHODS;
  let expose: string[] = [];
  let originsText: string[] = [];
  const keys = doc.keys();
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i];
    const value = doc.get(key)!;
    if (key == "allowOrigins") {
      const list = readStrings(key, value);
      if (!list.ok) return refuse(list.error);
      originsText = list.value!;
    } else if (key == "allowOriginPatterns") {
      const list = readStrings(key, value);
      if (!list.ok) return refuse(list.error);
      const items = list.value!;
      for (let j = 0; j < items.length; j++) {
        const why = new Array<string>();
        const pattern = parsePattern(items[j], why);
        if (pattern === null) return refuse(q(at(key, j)) + " " + q(items[j]) + " " + why[0]);
        config.patterns.push(pattern);
      }
    } else if (key == "allowMethods") {
      const list = readStrings(key, value);
      if (!list.ok) return refuse(list.error);
      const items = list.value!;
      for (let j = 0; j < items.length; j++) {
        const error = checkName(at(key, j), items[j], "method");
        if (error.length > 0) return refuse(error);
      }
      if (items.length == 0) return refuse(q(key) + " is empty: list the methods cross-origin requests may use");
      methods = items;
    } else if (key == "allowHeaders" || key == "exposeHeaders") {
      const list = readStrings(key, value);
      if (!list.ok) return refuse(list.error);
      const items = list.value!;
      for (let j = 0; j < items.length; j++) {
        const error = checkName(at(key, j), items[j], "header name");
        if (error.length > 0) return refuse(error);
        items[j] = items[j].toLowerCase();
      }
      if (key == "allowHeaders") config.allowHeaders = items;
      else expose = items;
    } else if (key == "allowCredentials") {
      const flag = readBool(key, value);
      if (!flag.ok) return refuse(flag.error);
      config.allowCredentials = flag.value;
    } else if (key == "maxAge") {
      const age = readInteger(key, value, 0, MAX_AGE_LIMIT, "a whole number of seconds");
      if (!age.ok) return refuse(age.error);
      config.maxAge = age.value;
    } else {
      return refuse(unknownKeyError(key, KEYS));
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

/** The strings of an array, each non-empty and listed once (ignoring case); patterns lower-cased. */
function readStrings(key: string, value: JsonValue): Checked<string[] | null> {
  const list = readStringArray(key, value);
  if (!list.ok) return list;
  const items = list.value!;
  for (let i = 0; i < items.length; i++) {
    const text = items[i];
    if (text.length == 0) return new Checked<string[] | null>(null, q(at(key, i)) + " is empty");
    for (let j = 0; j < i; j++) {
      if (items[j].toLowerCase() == text.toLowerCase()) return new Checked<string[] | null>(null, q(key) + " lists " + q(text) + " twice");
    }
    if (key == "allowOriginPatterns") items[i] = text.toLowerCase();
  }
  return list;
}

/** A method or header name: an HTTP token; "*" is refused (list the names instead). */
function checkName(path: string, text: string, what: string): string {
  if (text == "*") return q(path) + " is \"*\": wildcards are not supported, list each " + what;
  return checkToken(path, text, what);
}
