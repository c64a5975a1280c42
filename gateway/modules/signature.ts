/**
 * Signed modules: an ed25519 signature over the module's SHA-256, checked against the operator's
 * trusted public keys (modules.trustedKeys) before the bytes reach the compiler.
 *
 * What is signed is the 32 raw bytes of the SHA-256 digest, not its hex text and not the module
 * itself: the digest is already the module's identity everywhere in the gateway, and a signer
 * never needs the (possibly large) module in memory. Plain (pure) Ed25519, no prehash variant.
 * The same signature with openssl:
 *
 *   openssl dgst -sha256 -binary m.wasm > m.sha
 *   openssl pkeyutl -sign -rawin -inkey key.pem -in m.sha | base64 > m.wasm.sig
 *
 * A signature travels as base64 text: a detached `<module>.sig` file next to the module, a field
 * of an admin request, or a Redis value. Keys are PEM: private PKCS#8, public SPKI
 * (`openssl genpkey -algorithm ed25519 -out key.pem && openssl pkey -in key.pem -pubout`).
 */

import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { GatewayError } from '../errors.js';

export interface KeyPair {
  /** PKCS#8 PEM; keep it with the build that signs modules, never on the gateway. */
  readonly privateKeyPem: string;
  /** SPKI PEM; what goes into modules.trustedKeys. */
  readonly publicKeyPem: string;
}

/** A public key modules may be signed with, and the name messages and logs use for it. */
export interface TrustedKey {
  /** The PEM file path, or `trustedKeys[i]` for a key given inline. */
  readonly name: string;
  readonly key: KeyObject;
}

const ED25519_SIGNATURE_BYTES = 64;

/** A fresh ed25519 key pair (PKCS#8 and SPKI PEM). */
export function generateSigningKeys(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519', {
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  return Object.freeze({ privateKeyPem: privateKey, publicKeyPem: publicKey });
}

/**
 * Signs a module's SHA-256 (hex, any letter case) with an ed25519 PKCS#8 PEM key; returns the
 * signature as base64. Throws GW_ERR_MODULE_SIGNATURE for a malformed digest or a key that is not
 * an ed25519 private key.
 */
export function signSha256(sha256Hex: string, privateKeyPem: string): string {
  const digest = digestBytes('(signing)', sha256Hex);
  let key: KeyObject;
  try {
    key = createPrivateKey(privateKeyPem);
  } catch (err) {
    throw new GatewayError('GW_ERR_MODULE_SIGNATURE', `cannot parse the signing key: ${(err as Error).message}`, { cause: err });
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new GatewayError('GW_ERR_MODULE_SIGNATURE', `the signing key is ${String(key.asymmetricKeyType)}, modules are signed with ed25519`);
  }
  // Ed25519 hashes internally and takes no digest algorithm, hence null.
  return sign(null, digest, key).toString('base64');
}

/**
 * Loads modules.trustedKeys. Entries are PEM text or paths to PEM files (an entry holding
 * `-----BEGIN` is PEM text). Each must be one ed25519 public key in SPKI PEM.
 * Throws GW_ERR_MODULE_SIGNATURE naming the entry (unparsable, a private key, another PEM type, not
 * ed25519) or GW_ERR_MODULE_READ naming the file (unreadable).
 */
export function loadTrustedKeys(entries: readonly string[]): TrustedKey[] {
  return entries.map((entry, i) => {
    const inline = entry.includes('-----BEGIN');
    const name = inline ? `trustedKeys[${i}]` : entry;
    const pem = inline ? entry : readKeyFile(entry);
    return Object.freeze({ name, key: parsePublicKey(name, pem) });
  });
}

/**
 * Checks a module's signature. Returns the name of the key that verified it, or null when there is
 * nothing to check: the module is unsigned and no signature is required, or no trusted keys are
 * configured and none is required (signature checking is off; a signature is then not read).
 * Throws GW_ERR_MODULE_SIGNATURE naming `moduleName` when a signature is required but no trusted
 * keys are configured, when it is required but missing, when it is not base64 or not 64 bytes, and
 * when it verifies against none of the trusted keys.
 */
export function verifyModuleSignature(moduleName: string, sha256Hex: string, signature: string | null, keys: readonly TrustedKey[], required: boolean): string | null {
  if (keys.length === 0) {
    if (!required) return null;
    throw refusal(`module ${moduleName} must be signed (requireSignature) but modules.trustedKeys is empty: no signature can be checked`);
  }
  if (signature === null) {
    if (!required) return null;
    throw refusal(`module ${moduleName} is unsigned and a signature is required (requireSignature); sign its sha256 with one of modules.trustedKeys`);
  }
  const digest = digestBytes(moduleName, sha256Hex);
  const bytes = signatureBytes(moduleName, signature);
  for (const { name, key } of keys) {
    if (verify(null, digest, key, bytes)) return name;
  }
  const names = keys.map((k) => k.name).join(', ');
  throw refusal(`module ${moduleName} (sha256 ${sha256Hex.toLowerCase()}): its signature verifies against none of the ${keys.length} trusted keys (${names})`);
}

/**
 * The detached signature of a module file: the trimmed text of `<file>.sig`, or null when there is
 * no such file. Any other failure is GW_ERR_MODULE_READ naming the .sig file.
 */
export async function readDetachedSignature(file: string): Promise<string | null> {
  const sigFile = `${file}.sig`;
  try {
    return (await readFile(sigFile, 'utf8')).trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new GatewayError('GW_ERR_MODULE_READ', `cannot read signature file ${sigFile}: ${(err as Error).message}`, { cause: err });
  }
}

function readKeyFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new GatewayError('GW_ERR_MODULE_READ', `cannot read trusted key file ${file}: ${(err as Error).message}`, { cause: err });
  }
}

function parsePublicKey(name: string, pem: string): KeyObject {
  const labels = [...pem.matchAll(/-----BEGIN ([A-Z0-9 ]+)-----/g)].map((m) => m[1]);
  if (labels.length === 0) throw refusal(`trusted key ${name} is not PEM (no -----BEGIN line)`);
  // createPublicKey quietly derives the public half of a private key and reads only the first
  // block; refuse both, so a leaked private key or a forgotten second key is seen, not ignored.
  if (labels.length > 1) throw refusal(`trusted key ${name} holds ${labels.length} PEM blocks; give one key per entry`);
  if (labels[0].includes('PRIVATE KEY')) throw refusal(`trusted key ${name} is a private key; trustedKeys takes public keys (SPKI PEM, "BEGIN PUBLIC KEY")`);
  if (labels[0] !== 'PUBLIC KEY') throw refusal(`trusted key ${name} is a "${labels[0]}" PEM; trustedKeys takes SPKI public keys ("BEGIN PUBLIC KEY")`);
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (err) {
    throw new GatewayError('GW_ERR_MODULE_SIGNATURE', `trusted key ${name} cannot be parsed: ${(err as Error).message}`, { cause: err });
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw refusal(`trusted key ${name} is an ${String(key.asymmetricKeyType)} key; module signatures are ed25519`);
  }
  return key;
}

/** The 32 digest bytes. Buffer.from(hex) stops silently at the first non-hex pair, hence the check. */
function digestBytes(moduleName: string, sha256Hex: string): Buffer {
  if (!/^[0-9a-fA-F]{64}$/.test(sha256Hex)) throw refusal(`module ${moduleName}: "${sha256Hex}" is not a SHA-256 hex digest`);
  return Buffer.from(sha256Hex, 'hex');
}

/**
 * Strict base64: Buffer.from(text, 'base64') skips characters it does not know, so garbage would
 * decode to some bytes and fail later as a mere mismatch. Whitespace is allowed anywhere, because
 * `base64` wraps its output at 76 columns and openssl's at 64.
 */
function signatureBytes(moduleName: string, signature: string): Buffer {
  const text = signature.replace(/\s+/g, '');
  if (text === '') throw refusal(`module ${moduleName}: its signature is empty`);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
    throw refusal(`module ${moduleName}: its signature is not base64 (starts "${text.slice(0, 16)}")`);
  }
  const bytes = Buffer.from(text, 'base64');
  if (bytes.byteLength !== ED25519_SIGNATURE_BYTES) {
    throw refusal(`module ${moduleName}: its signature is ${bytes.byteLength} bytes, an ed25519 signature is ${ED25519_SIGNATURE_BYTES}`);
  }
  return bytes;
}

function refusal(message: string): GatewayError {
  return new GatewayError('GW_ERR_MODULE_SIGNATURE', message);
}
