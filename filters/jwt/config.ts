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
import {
  Checked, Header, JsonValue, checkKeys, checkToken, itemPath, parseJson, quote as q, readBool, readConfigObject, readInteger,
  readNonEmptyString, readString,
} from "../sdk/index";
import { Key, KeyOutcome, readConfiguredKey, readJwk } from "./keys";

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
  const loaded = readConfigObject(bytes, EXAMPLE);
  if (!loaded.ok) return refuse(loaded.error);
  const doc = loaded.value!;
  const config = new JwtConfig();
  let error = checkKeys(doc, KNOWN, "one of " + KNOWN.join(", "));
  if (error.length == 0) error = readKeys(doc, config.keys);
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
      const error = add(out, readConfiguredKey(itemPath("keys", i), keys.at(i)!));
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
      const error = add(out, readJwk(itemPath("jwks.keys", i), list.at(i)!));
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
    const one = readNonEmptyString(name, value);
    if (one.ok) out.push(one.value);
    return one.error;
  }
  if (!value.isArray()) return q(name) + " must be a string or an array of strings, got " + value.kindName();
  if (value.length == 0) return q(name) + " is an empty list: nothing would be allowed; leave it out to accept any";
  for (let i = 0; i < value.length; i++) {
    const item = readNonEmptyString(itemPath(name, i), value.at(i)!);
    if (!item.ok) return item.error;
    out.push(item.value);
  }
  return "";
}

function readOptions(doc: JsonValue, config: JwtConfig): string {
  const skew = doc.get("clockSkewSeconds");
  if (skew !== null) {
    const seconds = readInteger("clockSkewSeconds", skew, 0, MAX_CLOCK_SKEW_SECONDS, "a whole number of seconds");
    if (!seconds.ok) return seconds.error;
    config.clockSkewSeconds = <f64>seconds.value;
  }
  const requireExp = doc.get("requireExpiration");
  if (requireExp !== null) {
    const flag = readBool("requireExpiration", requireExp);
    if (!flag.ok) return flag.error;
    config.requireExpiration = flag.value;
  }
  const remove = doc.get("removeToken");
  if (remove !== null) {
    const flag = readBool("removeToken", remove);
    if (!flag.ok) return flag.error;
    config.removeToken = flag.value;
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
    const text = readString("queryParameter", query);
    if (!text.ok) return text.error;
    const name = text.value;
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
    const checked = readString("realm", realm);
    if (!checked.ok) return checked.error;
    const text = checked.value;
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
    const path = itemPath("bypass", i);
    if (!item.isString() || !item.asString().startsWith("/")) return q(path) + " must be a path prefix starting with \"/\"";
    const prefix = item.asString();
    if (prefix.includes("?") || prefix.includes("#") || prefix.includes("%") || prefix.includes("/../") || prefix.includes("/./")) {
      return q(path) + " must be a plain path (no ?, #, % or dot segments)";
    }
    out.push(prefix);
  }
  return "";
}

/** A header name: an HTTP token, lower-cased; not a pseudo-header and not a framing header. */
function checkHeaderName(path: string, name: string): Checked<string> {
  if (name.length == 0) return new Checked<string>("", q(path) + " is an empty header name");
  const invalid = checkToken(path, name, "header name");
  if (invalid.length > 0) return new Checked<string>("", invalid);
  const lower = name.toLowerCase();
  if (lower == "content-length" || lower == "transfer-encoding" || lower == "host") {
    return new Checked<string>("", q(path) + " cannot be " + q(lower) + ": it controls how the request is routed or framed");
  }
  return new Checked<string>(lower, "");
}
