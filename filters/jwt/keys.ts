/**
 * The verification keys of the jwt filter, built once from the configuration: HS256 shared secrets
 * and RS256 public keys (PEM or JWK). Each key is bound to one algorithm when it is configured, so
 * a token can never choose how a key is used (RFC 8725 §2.1, §3.1: an RSA public key is never
 * tried as an HMAC secret, whatever the token's `alg` says).
 */
import { JsonValue } from "../sdk/index";
import { HmacSha256, RSA_MAX_MODULUS_BITS, RSA_MIN_MODULUS_BITS, RsaPublicKey, RsaPublicKeyParts, base64UrlDecode, constantTimeEqual,
  parseJwkRsaPublicKey, parsePublicKeyPem } from "../sdk/crypto/index";

export enum Alg {
  HS256 = 1,
  RS256 = 2,
}

export function algName(alg: Alg): string {
  return alg == Alg.HS256 ? "HS256" : "RS256";
}

/** RFC 7518 §3.2: an HS256 key must be at least as long as the hash output. */
export const HS256_MIN_SECRET_BYTES: i32 = 32;

/** One configured key. `kid` is "" for a key without an id. */
export class Key {
  constructor(public kid: string, public alg: Alg, private hmac: HmacSha256 | null, private rsa: RsaPublicKey | null) {}

  /** True if `signature` signs `input` under this key with the key's own algorithm. */
  verify(input: Uint8Array, signature: Uint8Array): bool {
    if (this.alg == Alg.HS256) return constantTimeEqual(this.hmac!.update(input).final(), signature);
    return this.rsa!.verifyRS256(input, signature);
  }
}

/** A key, or why its configuration was refused (`error` names the entry). */
export class KeyOutcome {
  constructor(public key: Key | null, public error: string) {}
}

function refuse(error: string): KeyOutcome {
  return new KeyOutcome(null, error);
}

/** An optional "kid" member: "" when absent. */
function readKid(path: string, entry: JsonValue): KeyOutcome | null {
  const kid = entry.get("kid");
  if (kid === null) return null;
  if (!kid.isString()) return refuse(q(path + ".kid") + " must be a string, got " + kid.kindName());
  if (kid.asString().length == 0) return refuse(q(path + ".kid") + " must not be empty");
  return null;
}

/**
 * An entry of "keys": {"kid"?, "alg": "HS256", "secret", "encoding"?: "text" | "base64url"} or
 * {"kid"?, "alg": "RS256", "pem"}.
 */
export function readConfiguredKey(path: string, entry: JsonValue): KeyOutcome {
  if (!entry.isObject()) return refuse(q(path) + " must be an object such as {\"alg\":\"HS256\",\"secret\":\"…\"}, got " + entry.kindName());
  const kidError = readKid(path, entry);
  if (kidError !== null) return kidError;
  const kid = entry.has("kid") ? entry.get("kid")!.asString() : "";
  const alg = entry.get("alg");
  if (alg === null) return refuse(q(path) + " has no \"alg\" (expected \"HS256\" or \"RS256\")");
  if (!alg.isString()) return refuse(q(path + ".alg") + " must be a string, got " + alg.kindName());
  const name = alg.asString();
  if (name == "HS256") return readSecret(path, kid, entry);
  if (name == "RS256") return readPem(path, kid, entry);
  return refuse(q(path + ".alg") + " is " + q(name) + ", which is not supported (expected \"HS256\" or \"RS256\")");
}

function readSecret(path: string, kid: string, entry: JsonValue): KeyOutcome {
  const unknown = unknownMember(path, entry, ["kid", "alg", "secret", "encoding"]);
  if (unknown.length > 0) return refuse(unknown);
  const secret = entry.get("secret");
  if (secret === null) return refuse(q(path) + " is an HS256 key without \"secret\"");
  if (!secret.isString()) return refuse(q(path + ".secret") + " must be a string, got " + secret.kindName());
  let encoding = "text";
  const enc = entry.get("encoding");
  if (enc !== null) {
    if (!enc.isString() || (enc.asString() != "text" && enc.asString() != "base64url")) {
      return refuse(q(path + ".encoding") + " must be \"text\" or \"base64url\"");
    }
    encoding = enc.asString();
  }
  let bytes: Uint8Array;
  if (encoding == "base64url") {
    const decoded = base64UrlDecode(secret.asString());
    if (decoded === null) return refuse(q(path + ".secret") + " is not valid base64url (RFC 4648 §5, no padding)");
    bytes = decoded;
  } else {
    bytes = Uint8Array.wrap(String.UTF8.encode(secret.asString()));
  }
  if (bytes.length < HS256_MIN_SECRET_BYTES) {
    return refuse(q(path + ".secret") + " is " + bytes.length.toString() + " bytes; HS256 needs at least "
      + HS256_MIN_SECRET_BYTES.toString() + " (RFC 7518 §3.2)");
  }
  return new KeyOutcome(new Key(kid, Alg.HS256, new HmacSha256(bytes), null), "");
}

function readPem(path: string, kid: string, entry: JsonValue): KeyOutcome {
  const unknown = unknownMember(path, entry, ["kid", "alg", "pem"]);
  if (unknown.length > 0) return refuse(unknown);
  const pem = entry.get("pem");
  if (pem === null) return refuse(q(path) + " is an RS256 key without \"pem\"");
  if (!pem.isString()) return refuse(q(path + ".pem") + " must be a string, got " + pem.kindName());
  const parts = parsePublicKeyPem(pem.asString());
  if (parts === null) {
    return refuse(q(path + ".pem") + " is not an RSA public key in PEM (expected -----BEGIN PUBLIC KEY----- or -----BEGIN RSA PUBLIC KEY-----)");
  }
  return rsaKey(path + ".pem", kid, parts);
}

/** An entry of "jwks.keys": {"kty": "RSA", "kid"?, "n", "e", "alg"?: "RS256", "use"?: "sig"} (RFC 7517 §4, RFC 7518 §6.3). */
export function readJwk(path: string, entry: JsonValue): KeyOutcome {
  if (!entry.isObject()) return refuse(q(path) + " must be a JWK object, got " + entry.kindName());
  const kidError = readKid(path, entry);
  if (kidError !== null) return kidError;
  const kid = entry.has("kid") ? entry.get("kid")!.asString() : "";
  const kty = entry.get("kty");
  if (kty === null || !kty.isString()) return refuse(q(path + ".kty") + " must be \"RSA\"");
  if (kty.asString() != "RSA") return refuse(q(path + ".kty") + " is " + q(kty.asString()) + ", which is not supported (only \"RSA\", for RS256)");
  const alg = entry.get("alg");
  if (alg !== null && (!alg.isString() || alg.asString() != "RS256")) return refuse(q(path + ".alg") + " must be \"RS256\" when present");
  const use = entry.get("use");
  if (use !== null && (!use.isString() || use.asString() != "sig")) return refuse(q(path + ".use") + " must be \"sig\" when present");
  // RFC 7518 §6.3.2: "d" (and the CRT members) make it a private key, which has no place here.
  if (entry.has("d")) return refuse(q(path) + " is a private key (it has \"d\"); configure the public key only");
  const n = entry.get("n");
  const e = entry.get("e");
  if (n === null || !n.isString() || e === null || !e.isString()) return refuse(q(path) + " must have \"n\" and \"e\" as base64url strings");
  const parts = parseJwkRsaPublicKey(n.asString(), e.asString());
  if (parts === null) return refuse(q(path) + " has \"n\" or \"e\" that is not valid base64url or is zero");
  return rsaKey(path, kid, parts);
}

function rsaKey(path: string, kid: string, parts: RsaPublicKeyParts): KeyOutcome {
  const key = RsaPublicKey.create(parts.n, parts.e);
  if (key === null) {
    return refuse(q(path) + " is not a usable RS256 key (the modulus must be odd and " + RSA_MIN_MODULUS_BITS.toString() + " to "
      + RSA_MAX_MODULUS_BITS.toString() + " bits, the exponent odd and at least 3)");
  }
  return new KeyOutcome(new Key(kid, Alg.RS256, null, key), "");
}

/** A message naming the first member of `entry` not in `known`, or "". */
function unknownMember(path: string, entry: JsonValue, known: string[]): string {
  const names = entry.keys();
  for (let i = 0; i < names.length; i++) {
    if (!known.includes(names[i])) return "unknown member " + q(path + "." + names[i]) + " (expected " + known.join(", ") + ")";
  }
  return "";
}

/** A name in double quotes, for messages. */
export function q(s: string): string {
  return "\"" + s + "\"";
}
