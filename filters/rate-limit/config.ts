/**
 * The rate-limit filter's configuration, checked once in `onConfigure`:
 *
 *   {"key": {"source": "client"} | {"source": "header", "header": "x-api-key-name"},
 *    "capacity": 10, "refillPerSecond": 5, "statusCode": 429, "domain": "public-api"}
 *
 * `key`, `capacity` and `refillPerSecond` are required. `domain` separates the buckets of plugins
 * that count the same keys differently; it defaults to the plugin's name.
 */
import { JsonValue, parseJson } from "../sdk/index";

export const enum KeySource {
  Client = 0,
  Header = 1,
}

export class RateLimitConfig {
  source: KeySource = KeySource.Client;
  /** The header whose value is the key (`source` "header"), lower-cased. */
  header: string = "";
  capacity: f64 = 0;
  refillPerSecond: f64 = 0;
  statusCode: u32 = 429;
  /** "" until configured: the root then uses the plugin name. */
  domain: string = "";
}

/** A configuration, or the reason it was refused. */
export class ConfigOutcome {
  constructor(public config: RateLimitConfig | null, public error: string) {}
}

const EXAMPLE = "{\"key\":{\"source\":\"client\"},\"capacity\":10,\"refillPerSecond\":5}";
const KNOWN = ["key", "capacity", "refillPerSecond", "statusCode", "domain"];
const MAX_TOKENS: f64 = 1e9;

function refuse(error: string): ConfigOutcome {
  return new ConfigOutcome(null, error);
}

export function parseRateLimitConfig(bytes: ArrayBuffer | null): ConfigOutcome {
  if (bytes === null || isBlank(bytes)) return refuse("configuration is empty; expected a JSON object such as " + EXAMPLE);
  const parsed = parseJson(bytes);
  if (!parsed.ok) return refuse("configuration is not valid JSON: " + parsed.error!.toString());
  const doc = parsed.value!;
  if (!doc.isObject()) return refuse("configuration must be a JSON object such as " + EXAMPLE + ", got " + doc.kindName());
  const keys = doc.keys();
  for (let i = 0; i < keys.length; i++) {
    if (!KNOWN.includes(keys[i])) return refuse("unknown key " + q(keys[i]) + " (expected " + KNOWN.join(", ") + ")");
  }
  const config = new RateLimitConfig();

  const key = doc.get("key");
  if (key === null) return refuse("\"key\" is required: {\"source\": \"client\"} or {\"source\": \"header\", \"header\": \"x-…\"}");
  const keyError = readKey(key, config);
  if (keyError.length > 0) return refuse(keyError);

  const capacity = doc.get("capacity");
  if (capacity === null) return refuse("\"capacity\" is required: the most requests a key may make in a burst, as in " + EXAMPLE);
  if (!capacity.isNumber() || !capacity.isInteger() || capacity.asNumber() < 1 || capacity.asNumber() > MAX_TOKENS) {
    return refuse("\"capacity\" must be an integer from 1 to 1000000000, got " + shown(capacity));
  }
  config.capacity = capacity.asNumber();

  const refill = doc.get("refillPerSecond");
  if (refill === null) return refuse("\"refillPerSecond\" is required: the tokens added back per second, as in " + EXAMPLE);
  if (!refill.isNumber() || !(refill.asNumber() > 0) || refill.asNumber() > MAX_TOKENS) {
    return refuse("\"refillPerSecond\" must be a number above 0 and at most 1000000000, got " + shown(refill));
  }
  config.refillPerSecond = refill.asNumber();

  const status = doc.get("statusCode");
  if (status !== null) {
    if (!status.isNumber() || !status.isInteger() || status.asNumber() < 400 || status.asNumber() > 599) {
      return refuse("\"statusCode\" must be an integer from 400 to 599, got " + shown(status));
    }
    config.statusCode = <u32>status.asNumber();
  }

  const domain = doc.get("domain");
  if (domain !== null) {
    if (!domain.isString() || domain.asString().length == 0 || hasControl(domain.asString())) {
      return refuse("\"domain\" must be a non-empty string without control characters, got " + shown(domain));
    }
    config.domain = domain.asString();
  }
  return new ConfigOutcome(config, "");
}

function readKey(key: JsonValue, config: RateLimitConfig): string {
  if (!key.isObject()) return "\"key\" must be an object such as {\"source\": \"client\"}, got " + key.kindName();
  const fields = key.keys();
  for (let i = 0; i < fields.length; i++) {
    if (fields[i] != "source" && fields[i] != "header") return "unknown key " + q("key." + fields[i]) + " (expected source, header)";
  }
  const source = key.get("source");
  const header = key.get("header");
  if (source === null || !source.isString()) return "\"key.source\" must be \"client\" or \"header\"";
  if (source.asString() == "client") {
    if (header !== null) return "\"key.header\" is only for \"source\": \"header\"";
    config.source = KeySource.Client;
    return "";
  }
  if (source.asString() != "header") return "\"key.source\" must be \"client\" or \"header\", got " + q(source.asString());
  if (header === null) return "\"key.header\" is required with \"source\": \"header\"";
  if (!header.isString() || !isHeaderName(header.asString())) {
    return "\"key.header\" must be a header name (letters, digits and !#$%&'*+-.^_`|~), got " + shown(header);
  }
  config.source = KeySource.Header;
  config.header = header.asString().toLowerCase();
  return "";
}

/** A value for messages: strings quoted, numbers as written, other kinds by name. */
function shown(v: JsonValue): string {
  if (v.isString()) return q(v.asString());
  if (v.isNumber()) return v.numberText();
  return v.kindName();
}

function isHeaderName(name: string): bool {
  if (name.length == 0) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    const ok = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x21 || c == 0x23 || c == 0x24
      || c == 0x25 || c == 0x26 || c == 0x27 || c == 0x2a || c == 0x2b || c == 0x2d || c == 0x2e || c == 0x5e || c == 0x5f || c == 0x60
      || c == 0x7c || c == 0x7e;
    if (!ok) return false;
  }
  return true;
}

function hasControl(s: string): bool {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

function isBlank(bytes: ArrayBuffer): bool {
  const view = Uint8Array.wrap(bytes);
  for (let i = 0; i < view.length; i++) {
    const b = view[i];
    if (b != 0x20 && b != 0x09 && b != 0x0a && b != 0x0d) return false;
  }
  return true;
}

function q(s: string): string {
  return "\"" + s + "\"";
}
