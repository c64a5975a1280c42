/**
 * JWS compact-serialisation verification (RFC 7515 §5.2) and JWT claim checks (RFC 7519 §7.2,
 * §4.1.4-§4.1.5) for HS256 and RS256, against the configured keys.
 *
 * The order matters: the header decides which key (never which kind of key, RFC 8725 §3.1), the
 * signature is checked before the payload is even parsed, and the claims are trusted only after.
 * Failure reasons are fixed strings: nothing from the token reaches the `WWW-Authenticate` header.
 */
import { JsonValue, parseJson } from "../sdk/index";
import { base64UrlDecode } from "../sdk/crypto/index";
import { JwtConfig } from "./config";
import { Alg, Key } from "./keys";

/** Longest token looked at (header, payload and signature, with the dots). */
export const MAX_TOKEN_LENGTH: i32 = 8192;

export const E_TOO_LONG = "the token is too long";
export const E_PARTS = "the token must be three base64url parts separated by dots";
export const E_BASE64 = "the token is not valid base64url";
export const E_HEADER = "the token header is not a JSON object";
export const E_ALG_NONE = "unsigned tokens (alg none) are not accepted";
export const E_ALG = "the token algorithm is missing or not supported (expected HS256 or RS256)";
export const E_CRIT = "the token has critical header parameters that are not supported";
export const E_KID = "no key matches the token key id";
export const E_KEY_ALG = "the token algorithm does not match its key";
export const E_NO_KEY = "no key is configured for the token algorithm";
export const E_SIGNATURE = "the token signature is invalid";
export const E_PAYLOAD = "the token payload is not a JSON object";
export const E_EXP_TYPE = "the token exp claim is not a number";
export const E_NBF_TYPE = "the token nbf claim is not a number";
export const E_NO_EXP = "the token has no expiration time";
export const E_EXPIRED = "the token has expired";
export const E_NOT_YET = "the token is not valid yet";
export const E_ISSUER = "the token issuer is not allowed";
export const E_AUDIENCE = "the token audience is not allowed";

/** The outcome: the verified claims, or the reason the token was refused. */
export class Verdict {
  constructor(public claims: JsonValue | null, public error: string) {}
}

function fail(error: string): Verdict {
  return new Verdict(null, error);
}

/** Verifies `token` at `nowSeconds` (Unix time, fractional) against `config`. */
export function verifyToken(token: string, config: JwtConfig, nowSeconds: f64): Verdict {
  if (token.length > MAX_TOKEN_LENGTH) return fail(E_TOO_LONG);
  const dot1 = token.indexOf(".");
  const dot2 = dot1 < 0 ? -1 : token.indexOf(".", dot1 + 1);
  if (dot2 < 0 || token.indexOf(".", dot2 + 1) >= 0) return fail(E_PARTS);
  const headerBytes = base64UrlDecode(token.substring(0, dot1));
  const payloadBytes = base64UrlDecode(token.substring(dot1 + 1, dot2));
  const signature = base64UrlDecode(token.substring(dot2 + 1));
  if (headerBytes === null || payloadBytes === null || signature === null) return fail(E_BASE64);

  const header = parseObject(headerBytes);
  if (header === null) return fail(E_HEADER);
  const alg = header.get("alg");
  if (alg !== null && alg.isString() && alg.asString().toLowerCase() == "none") return fail(E_ALG_NONE);
  let want: Alg;
  if (alg !== null && alg.isString() && alg.asString() == "HS256") want = Alg.HS256;
  else if (alg !== null && alg.isString() && alg.asString() == "RS256") want = Alg.RS256;
  else return fail(E_ALG);
  // RFC 7515 §4.1.11: extensions listed in "crit" must be understood, and this verifier knows none.
  if (header.has("crit")) return fail(E_CRIT);
  const kid = header.get("kid");
  if (kid !== null && !kid.isString()) return fail(E_HEADER);

  // The signing input is the ASCII of "header.payload" (§5.2 step 8); base64url checked it is ASCII.
  const input = Uint8Array.wrap(String.UTF8.encode(token.substring(0, dot2)));
  const keyError = checkSignature(config.keys, want, kid === null ? null : kid.asString(), input, signature);
  if (keyError.length > 0) return fail(keyError);

  const claims = parseObject(payloadBytes);
  if (claims === null) return fail(E_PAYLOAD);
  const claimError = checkClaims(claims, config, nowSeconds);
  if (claimError.length > 0) return fail(claimError);
  return new Verdict(claims, "");
}

/**
 * "" when a key allows this signature. A token with a `kid` is checked with the key of that id,
 * which must be of the token's algorithm; when no key has that id, and without a `kid`, every key
 * of the token's algorithm that has no id of its own is tried (as Envoy's jwt_authn does), and
 * without a `kid` the keys with ids too.
 */
function checkSignature(keys: Key[], alg: Alg, kid: string | null, input: Uint8Array, signature: Uint8Array): string {
  if (kid !== null) {
    for (let i = 0; i < keys.length; i++) {
      const key = unchecked(keys[i]);
      if (key.kid != kid) continue;
      if (key.alg != alg) return E_KEY_ALG;
      return key.verify(input, signature) ? "" : E_SIGNATURE;
    }
  }
  let tried = false;
  for (let i = 0; i < keys.length; i++) {
    const key = unchecked(keys[i]);
    if (key.alg != alg || (kid !== null && key.kid.length > 0)) continue;
    tried = true;
    if (key.verify(input, signature)) return "";
  }
  if (tried) return E_SIGNATURE;
  return kid !== null ? E_KID : E_NO_KEY;
}

function checkClaims(claims: JsonValue, config: JwtConfig, now: f64): string {
  const skew = config.clockSkewSeconds;
  // RFC 7519 §4.1.4: valid only while now < exp (plus the allowed skew).
  const exp = claims.get("exp");
  if (exp !== null) {
    if (!exp.isNumber()) return E_EXP_TYPE;
    if (now >= exp.asNumber() + skew) return E_EXPIRED;
  } else if (config.requireExpiration) {
    return E_NO_EXP;
  }
  // §4.1.5: not valid before nbf (minus the allowed skew).
  const nbf = claims.get("nbf");
  if (nbf !== null) {
    if (!nbf.isNumber()) return E_NBF_TYPE;
    if (now + skew < nbf.asNumber()) return E_NOT_YET;
  }
  if (config.issuers.length > 0) {
    const iss = claims.get("iss");
    if (iss === null || !iss.isString() || !config.issuers.includes(iss.asString())) return E_ISSUER;
  }
  if (config.audiences.length > 0 && !audienceAllowed(claims.get("aud"), config.audiences)) return E_AUDIENCE;
  return "";
}

/** §4.1.3: `aud` is a string or an array of strings; one of them must be allowed. */
function audienceAllowed(aud: JsonValue | null, allowed: string[]): bool {
  if (aud === null) return false;
  if (aud.isString()) return allowed.includes(aud.asString());
  if (!aud.isArray()) return false;
  for (let i = 0; i < aud.length; i++) {
    const item = aud.at(i)!;
    if (item.isString() && allowed.includes(item.asString())) return true;
  }
  return false;
}

function parseObject(bytes: Uint8Array): JsonValue | null {
  // base64UrlDecode allocates an exact-size array, so its buffer holds exactly the decoded bytes.
  const parsed = parseJson(bytes.buffer);
  if (!parsed.ok || !parsed.value!.isObject()) return null;
  return parsed.value;
}
