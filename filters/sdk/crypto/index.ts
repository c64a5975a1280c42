/**
 * Crypto for filters that authenticate requests (jwt, api-key): SHA-256, HMAC-SHA256, base64,
 * RS256 verification and RSA public-key parsing. Pure AssemblyScript, no host calls; every
 * function returns null/false on bad input instead of trapping.
 *
 *   import { parsePublicKeyPem, RsaPublicKey } from "../sdk/crypto/index";
 */
export { Sha256, sha256, hex, SHA256_DIGEST_LENGTH, SHA256_BLOCK_LENGTH } from "./sha256";
export { HmacSha256, hmacSha256, verifyHmacSha256 } from "./hmac";
export { base64Decode, base64Encode, base64UrlDecode, base64UrlEncode } from "./base64";
export { RsaPublicKey, verifyRS256, RSA_MIN_MODULUS_BITS, RSA_MAX_MODULUS_BITS } from "./rsa";
export { RsaPublicKeyParts, parsePublicKeyPem, parseSpkiPublicKeyDer, parsePkcs1PublicKeyDer, parseJwkRsaPublicKey } from "./der";
export { constantTimeEqual, constantTimeEqualString } from "./timing";
