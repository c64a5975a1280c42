/**
 * The jwt filter's configuration, validated once in `onConfigure` (see README.md):
 *
 *   {"keys": [{"kid": "hs-1", "alg": "HS256", "secret": "…"}, {"kid": "rs-1", "alg": "RS256", "pem": "-----BEGIN PUBLIC KEY-----…"}],
 *    "jwks": {"keys": [{"kid": "rs-2", "kty": "RSA", "n": "…", "e": "AQAB"}]},
 *    "issuers": ["https://issuer.example"], "audiences": ["api"], "clockSkewSeconds": 60,
 *    "claimsToHeaders": {"sub": "x-user-id"}, "bypass": ["/health"], "realm": "api"}
 *
 * Every problem is reported with the path of the offending entry, e.g.
 * `"keys[0].alg" is "ES256", which is not supported (expected "HS256" or "RS256")`.
 */
import { Header, JsonValue, parseJson } from "../sdk/index";
import { Key, KeyOutcome, q, readConfiguredKey, readJwk } from "./keys";

export const DEFAULT_REALM = "edge-gateway";
export const DEFAULT_CLOCK_SKEW_SECONDS: i32 = 60;
export const MAX_CLOCK_SKEW_SECONDS: i32 = 86400;

export class JwtConfig {
  keys: Key[] = [];
  /** Allowed `iss` values; empty: any (or none). */
  issuers: string[] = [];
  /** Allowed `aud` values, any one of which must appear in the token; empty: any (or none). */
  audiences: string[] = [];
  clockSkewSeconds: f64 = <f64>DEFAULT_CLOCK_SKEW_SECONDS;
  requireExpiration: bool = true;
  /** Header the token is read from (lower-case). */
  header: string = "authorization";
  /** Query parameter the token may be read from; "" for none. */
  queryParameter: string = "";
  removeToken: bool = false;
  /** Claim name → request header name (lower-case). */
  claimsToHeaders: Header[] = [];
  /** Path prefixes that need no token. */
  bypass: string[] = [];
  realm: string = DEFAULT_REALM;
}

/** A configuration, or the reason it was refused. */
export class ConfigOutcome {
  constructor(public config: JwtConfig | null, public error: string) {}
}

const EXAMPLE = "{\"keys\":[{\"alg\":\"HS256\",\"secret\":\"…\"}]}";

const KNOWN = ["keys", "jwks", "issuers", "audiences", "clockSkewSeconds", "requireExpiration", "header", "queryParameter", "removeToken",
  "claimsToHeaders", "bypass", "realm"];

function refuse(error: string): ConfigOutcome {
  return new ConfigOutcome(null, error);
}

export function parseJwtConfig(bytes: ArrayBuffer | null): ConfigOutcome {
  if (bytes === null || isBlank(bytes)) return refuse("configuration is empty; expected a JSON object such as " + EXAMPLE);
  const parsed = parseJson(bytes);
  if (!parsed.ok) return refuse("configuration is not valid JSON: " + parsed.error!.toString());
  const doc = parsed.value!;
  if (!doc.isObject()) return refuse("configuration must be a JSON object such as " + EXAMPLE + ", got " + doc.kindName());
  const names = doc.keys();
  for (let i = 0; i < names.length; i++) {
    if (!KNOWN.includes(names[i])) return refuse("unknown key " + q(names[i]) + " (expected one of " + KNOWN.join(", ") + ")");
  }
  const config = new JwtConfig();
  let error = readKeys(doc, config.keys);
  if (error.length == 0) error = readStringList(doc, "issuers", config.issuers);
  if (error.length == 0) error = readStringList(doc, "audiences", config.audiences);
  if (error.length == 0) error = readOptions(doc, config);
  if (error.length == 0) error = readClaimsToHeaders(doc, config.claimsToHeaders);
  if (error.length == 0) error = readBypass(doc, config.bypass);
  if (error.length > 0) return refuse(error);
  return new ConfigOutcome(config, "");
}

function readKeys(doc: JsonValue, out: Key[]): string {
  const keys = doc.get("keys");
  if (keys !== null) {
    if (!keys.isArray()) return "\"keys\" must be an array of keys, got " + keys.kindName();
    for (let i = 0; i < keys.length; i++) {
      const error = add(out, readConfiguredKey("keys[" + i.toString() + "]", keys.at(i)!));
      if (error.length > 0) return error;
    }
  }
  let jwks = doc.get("jwks");
  if (jwks !== null) {
    // A JWKS document pasted as text is accepted too.
    if (jwks.isString()) {
      const text = jwks.asString();
      const parsed = parseJson(String.UTF8.encode(text));
      if (!parsed.ok) return "\"jwks\" is a string that is not valid JSON: " + parsed.error!.toString();
      jwks = parsed.value!;
    }
    const list = jwks.isObject() ? jwks.get("keys") : null;
    if (list === null || !list.isArray()) return "\"jwks\" must be a JWK set such as {\"keys\":[{\"kty\":\"RSA\",\"kid\":\"…\",\"n\":\"…\",\"e\":\"AQAB\"}]}";
    for (let i = 0; i < list.length; i++) {
      const error = add(out, readJwk("jwks.keys[" + i.toString() + "]", list.at(i)!));
      if (error.length > 0) return error;
    }
  }
  if (out.length == 0) return "configuration has no keys: give \"keys\" and/or \"jwks\" at least one key, e.g. " + EXAMPLE;
  return "";
}

function add(out: Key[], outcome: KeyOutcome): string {
  if (outcome.key === null) return outcome.error;
  const key = outcome.key!;
  if (key.kid.length > 0) {
    for (let i = 0; i < out.length; i++) {
      if (out[i].kid == key.kid) return "two keys have the key id " + q(key.kid) + "; key ids must be unique";
    }
  }
  out.push(key);
  return "";
}

/** A string or an array of non-empty strings. */
function readStringList(doc: JsonValue, name: string, out: string[]): string {
  const value = doc.get(name);
  if (value === null) return "";
  if (value.isString()) {
    if (value.asString().length == 0) return q(name) + " must not be empty";
    out.push(value.asString());
    return "";
  }
  if (!value.isArray()) return q(name) + " must be a string or an array of strings, got " + value.kindName();
  if (value.length == 0) return q(name) + " is an empty list: nothing would be allowed; leave it out to accept any";
  for (let i = 0; i < value.length; i++) {
    const item = value.at(i)!;
    const path = name + "[" + i.toString() + "]";
    if (!item.isString()) return q(path) + " must be a string, got " + item.kindName();
    if (item.asString().length == 0) return q(path) + " must not be empty";
    out.push(item.asString());
  }
  return "";
}

function readOptions(doc: JsonValue, config: JwtConfig): string {
  const skew = doc.get("clockSkewSeconds");
  if (skew !== null) {
    if (!skew.isInteger() || skew.asNumber() < 0 || skew.asNumber() > <f64>MAX_CLOCK_SKEW_SECONDS) {
      return "\"clockSkewSeconds\" must be a whole number of seconds from 0 to " + MAX_CLOCK_SKEW_SECONDS.toString();
    }
    config.clockSkewSeconds = skew.asNumber();
  }
  const requireExp = doc.get("requireExpiration");
  if (requireExp !== null) {
    if (!requireExp.isBool()) return "\"requireExpiration\" must be true or false, got " + requireExp.kindName();
    config.requireExpiration = requireExp.asBool();
  }
  const remove = doc.get("removeToken");
  if (remove !== null) {
    if (!remove.isBool()) return "\"removeToken\" must be true or false, got " + remove.kindName();
    config.removeToken = remove.asBool();
  }
  const header = doc.get("header");
  if (header !== null) {
    if (!header.isString()) return "\"header\" must be a header name (a string), got " + header.kindName();
    const checked = checkHeaderName("header", header.asString());
    if (checked.error.length > 0) return checked.error;
    config.header = checked.value;
  }
  const query = doc.get("queryParameter");
  if (query !== null) {
    if (!query.isString()) return "\"queryParameter\" must be a string, got " + query.kindName();
    const name = query.asString();
    if (name.length == 0) return "\"queryParameter\" must not be empty; leave it out to read the token from the header only";
    for (let i = 0; i < name.length; i++) {
      const c = name.charCodeAt(i);
      if (c <= 0x20 || c >= 0x7f || c == 0x26 || c == 0x3d || c == 0x23 || c == 0x3f || c == 0x25) {
        return "\"queryParameter\" " + q(name) + " must be a plain name (no spaces, &, =, #, ?, % or non-ASCII characters)";
      }
    }
    config.queryParameter = name;
  }
  const realm = doc.get("realm");
  if (realm !== null) {
    if (!realm.isString()) return "\"realm\" must be a string, got " + realm.kindName();
    const text = realm.asString();
    // RFC 7235 §2.2: the realm is a quoted-string; keep it to printable ASCII without '"' and '\'.
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c < 0x20 || c >= 0x7f || c == 0x22 || c == 0x5c) return "\"realm\" may hold printable ASCII only, without '\"' or '\\'";
    }
    config.realm = text;
  }
  return "";
}

function readClaimsToHeaders(doc: JsonValue, out: Header[]): string {
  const map = doc.get("claimsToHeaders");
  if (map === null) return "";
  if (!map.isObject()) return "\"claimsToHeaders\" must be an object of claim names to header names, got " + map.kindName();
  const claims = map.keys();
  for (let i = 0; i < claims.length; i++) {
    const path = "claimsToHeaders." + claims[i];
    const target = map.get(claims[i])!;
    if (!target.isString()) return q(path) + " must be a header name (a string), got " + target.kindName();
    const checked = checkHeaderName(path, target.asString());
    if (checked.error.length > 0) return checked.error;
    out.push(new Header(claims[i], checked.value));
  }
  return "";
}

function readBypass(doc: JsonValue, out: string[]): string {
  const list = doc.get("bypass");
  if (list === null) return "";
  if (!list.isArray()) return "\"bypass\" must be an array of path prefixes, got " + list.kindName();
  for (let i = 0; i < list.length; i++) {
    const item = list.at(i)!;
    const path = "bypass[" + i.toString() + "]";
    if (!item.isString() || !item.asString().startsWith("/")) return q(path) + " must be a path prefix starting with \"/\"";
    const prefix = item.asString();
    if (prefix.includes("?") || prefix.includes("#") || prefix.includes("%") || prefix.includes("/../") || prefix.includes("/./")) {
      return q(path) + " must be a plain path (no ?, #, % or dot segments)";
    }
    out.push(prefix);
  }
  return "";
}

/** A checked header name, or why it was refused. */
class Checked {
  constructor(public value: string, public error: string) {}
}

/** A header name: an HTTP token, lower-cased; not a pseudo-header and not a framing header. */
function checkHeaderName(path: string, name: string): Checked {
  if (name.length == 0) return new Checked("", q(path) + " is an empty header name");
  for (let i = 0; i < name.length; i++) {
    if (!isTokenChar(name.charCodeAt(i))) {
      return new Checked("", q(path) + " has an invalid header name " + q(name) + ": names are letters, digits and !#$%&'*+-.^_`|~");
    }
  }
  const lower = name.toLowerCase();
  if (lower == "content-length" || lower == "transfer-encoding" || lower == "host") {
    return new Checked("", q(path) + " cannot be " + q(lower) + ": it controls how the request is routed or framed");
  }
  return new Checked(lower, "");
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
