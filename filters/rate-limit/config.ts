/**
 * The rate-limit filter's configuration, checked once in `onConfigure`:
 *
 *   {"key": {"source": "client"} | {"source": "header", "header": "x-api-key-name"},
 *    "capacity": 10, "refillPerSecond": 5, "statusCode": 429, "domain": "public-api"}
 *
 * `key`, `capacity` and `refillPerSecond` are required. `domain` separates the buckets of plugins
 * that count the same keys differently; it defaults to the plugin's name.
 */
import {
  JsonValue, checkKeys, describeValue, hasControlCharacter, isToken, quote as q, readConfigObject, readInteger,
} from "../sdk/index";

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
  const loaded = readConfigObject(bytes, EXAMPLE);
  if (!loaded.ok) return refuse(loaded.error);
  const doc = loaded.value!;
  const unknown = checkKeys(doc, KNOWN, KNOWN.join(", "));
  if (unknown.length > 0) return refuse(unknown);
  const config = new RateLimitConfig();

  const key = doc.get("key");
  if (key === null) return refuse("\"key\" is required: {\"source\": \"client\"} or {\"source\": \"header\", \"header\": \"x-…\"}");
  const keyError = readKey(key, config);
  if (keyError.length > 0) return refuse(keyError);

  const capacity = doc.get("capacity");
  if (capacity === null) return refuse("\"capacity\" is required: the most requests a key may make in a burst, as in " + EXAMPLE);
  const tokens = readInteger("capacity", capacity, 1, <i64>MAX_TOKENS);
  if (!tokens.ok) return refuse(tokens.error);
  config.capacity = <f64>tokens.value;

  const refill = doc.get("refillPerSecond");
  if (refill === null) return refuse("\"refillPerSecond\" is required: the tokens added back per second, as in " + EXAMPLE);
  if (!refill.isNumber() || !(refill.asNumber() > 0) || refill.asNumber() > MAX_TOKENS) {
    return refuse("\"refillPerSecond\" must be a number above 0 and at most 1000000000, got " + describeValue(refill));
  }
  config.refillPerSecond = refill.asNumber();

  const status = doc.get("statusCode");
  if (status !== null) {
    const code = readInteger("statusCode", status, 400, 599);
    if (!code.ok) return refuse(code.error);
    config.statusCode = <u32>code.value;
  }

  const domain = doc.get("domain");
  if (domain !== null) {
    if (!domain.isString() || domain.asString().length == 0 || hasControlCharacter(domain.asString())) {
      return refuse("\"domain\" must be a non-empty string without control characters, got " + describeValue(domain));
    }
    config.domain = domain.asString();
  }
  return new ConfigOutcome(config, "");
}

function readKey(key: JsonValue, config: RateLimitConfig): string {
  if (!key.isObject()) return "\"key\" must be an object such as {\"source\": \"client\"}, got " + key.kindName();
  const unknown = checkKeys(key, ["source", "header"], "source, header", "key.");
  if (unknown.length > 0) return unknown;
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
  if (!header.isString() || !isToken(header.asString())) {
    return "\"key.header\" must be a header name (letters, digits and !#$%&'*+-.^_`|~), got " + describeValue(header);
  }
  config.source = KeySource.Header;
  config.header = header.asString().toLowerCase();
  return "";
}
