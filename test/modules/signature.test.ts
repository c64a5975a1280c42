import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GatewayError, type ErrorCode } from '../../gateway/errors.js';
import { sha256Hex } from '../../gateway/modules/sha256.js';
import {
  generateSigningKeys,
  loadTrustedKeys,
  readDetachedSignature,
  signSha256,
  verifyModuleSignature,
} from '../../gateway/modules/signature.js';

const dir = mkdtempSync(join(tmpdir(), 'signature-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const MODULE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]);
const SHA = sha256Hex(MODULE);
const signer = generateSigningKeys();
const stranger = generateSigningKeys();
const [trusted] = loadTrustedKeys([signer.publicKeyPem]);

/** The GatewayError `fn` throws, checked for its code. */
function thrown(fn: () => unknown, code: ErrorCode): GatewayError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(GatewayError);
    expect((err as GatewayError).code).toBe(code);
    return err as GatewayError;
  }
  throw new Error('expected a GatewayError');
}

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const hasOpenssl = ((): boolean => {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe('module signatures', () => {
  it('verifies a signature made with the matching private key and names the key', () => {
    const signature = signSha256(SHA, signer.privateKeyPem);
    expect(Buffer.from(signature, 'base64')).toHaveLength(64);
    expect(verifyModuleSignature('m.wasm', SHA, signature, [trusted], true)).toBe('trustedKeys[0]');
  });

  it('accepts the digest in upper case, as some tools print it', () => {
    const signature = signSha256(SHA.toUpperCase(), signer.privateKeyPem);
    expect(verifyModuleSignature('m.wasm', SHA, signature, [trusted], false)).toBe('trustedKeys[0]');
  });

  it('names the second trusted key when it is the one that verifies', () => {
    const keys = loadTrustedKeys([stranger.publicKeyPem, signer.publicKeyPem]);
    expect(verifyModuleSignature('m.wasm', SHA, signSha256(SHA, signer.privateKeyPem), keys, true)).toBe('trustedKeys[1]');
  });

  it('refuses a signature made with a key that is not trusted, even when signatures are optional', () => {
    const signature = signSha256(SHA, stranger.privateKeyPem);
    const err = thrown(() => verifyModuleSignature('m.wasm', SHA, signature, [trusted], false), 'GW_ERR_MODULE_SIGNATURE');
    expect(err.message).toBe(`module m.wasm (sha256 ${SHA}): its signature verifies against none of the 1 trusted keys (trustedKeys[0])`);
  });

  it('refuses a signature over other bytes', () => {
    const signature = signSha256(SHA, signer.privateKeyPem);
    const tampered = sha256Hex(new Uint8Array([...MODULE, 0]));
    const err = thrown(() => verifyModuleSignature('m.wasm', tampered, signature, [trusted], true), 'GW_ERR_MODULE_SIGNATURE');
    expect(err.message).toContain('verifies against none of the 1 trusted keys');
  });

  it('refuses an unsigned module when a signature is required', () => {
    const err = thrown(() => verifyModuleSignature('m.wasm', SHA, null, [trusted], true), 'GW_ERR_MODULE_SIGNATURE');
    expect(err.message).toMatch(/^module m\.wasm is unsigned and a signature is required/);
  });

  it('lets an unsigned module through when no signature is required', () => {
    expect(verifyModuleSignature('m.wasm', SHA, null, [trusted], false)).toBeNull();
  });

  it('refuses to require signatures with no trusted keys to check them against', () => {
    const signature = signSha256(SHA, signer.privateKeyPem);
    const err = thrown(() => verifyModuleSignature('m.wasm', SHA, signature, [], true), 'GW_ERR_MODULE_SIGNATURE');
    expect(err.message).toContain('modules.trustedKeys is empty');
  });

  it('checks nothing when no keys are trusted and none is required', () => {
    expect(verifyModuleSignature('m.wasm', SHA, 'not checked', [], false)).toBeNull();
  });

  it('refuses a signature that is not base64, is empty, or is not 64 bytes, saying which', () => {
    const refuse = (signature: string): string => thrown(() => verifyModuleSignature('m.wasm', SHA, signature, [trusted], false), 'GW_ERR_MODULE_SIGNATURE').message;
    expect(refuse('not a signature!')).toBe('module m.wasm: its signature is not base64 (starts "notasignature!")');
    expect(refuse('  \n')).toBe('module m.wasm: its signature is empty');
    expect(refuse(Buffer.alloc(32).toString('base64'))).toBe('module m.wasm: its signature is 32 bytes, an ed25519 signature is 64');
  });

  it('reads a signature wrapped over several lines, as base64 and openssl print it', () => {
    const wrapped = signSha256(SHA, signer.privateKeyPem).replace(/(.{64})/, '$1\n');
    expect(verifyModuleSignature('m.wasm', SHA, wrapped, [trusted], true)).toBe('trustedKeys[0]');
  });
});

describe('trusted keys', () => {
  it('loads a key from a PEM file, named by its path, and inline PEM, named by its index', () => {
    const path = file('signer.pub.pem', signer.publicKeyPem);
    const keys = loadTrustedKeys([path, stranger.publicKeyPem]);
    expect(keys.map((k) => k.name)).toEqual([path, 'trustedKeys[1]']);
    expect(keys.map((k) => k.key.asymmetricKeyType)).toEqual(['ed25519', 'ed25519']);
  });

  it('refuses an RSA or EC public key, naming the entry and its type', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }) as string;
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }) as string;
    expect(thrown(() => loadTrustedKeys([signer.publicKeyPem, rsa]), 'GW_ERR_MODULE_SIGNATURE').message).toBe('trusted key trustedKeys[1] is an rsa key; module signatures are ed25519');
    const path = file('ec.pub.pem', ec);
    expect(thrown(() => loadTrustedKeys([path]), 'GW_ERR_MODULE_SIGNATURE').message).toBe(`trusted key ${path} is an ec key; module signatures are ed25519`);
  });

  it('refuses a private key where a public key belongs', () => {
    expect(thrown(() => loadTrustedKeys([signer.privateKeyPem]), 'GW_ERR_MODULE_SIGNATURE').message).toMatch(/^trusted key trustedKeys\[0\] is a private key/);
  });

  it('refuses a PEM file holding two keys and PEM that does not parse', () => {
    expect(thrown(() => loadTrustedKeys([file('two.pem', signer.publicKeyPem + stranger.publicKeyPem)]), 'GW_ERR_MODULE_SIGNATURE').message).toContain('holds 2 PEM blocks');
    const broken = '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n';
    expect(thrown(() => loadTrustedKeys([broken]), 'GW_ERR_MODULE_SIGNATURE').message).toMatch(/^trusted key trustedKeys\[0\] cannot be parsed: /);
    expect(thrown(() => loadTrustedKeys([file('text.pem', 'hello')]), 'GW_ERR_MODULE_SIGNATURE').message).toContain('is not PEM');
  });

  it('reports a key file that cannot be read as a read error naming the file', () => {
    const missing = join(dir, 'missing.pem');
    expect(thrown(() => loadTrustedKeys([missing]), 'GW_ERR_MODULE_READ').message).toMatch(new RegExp(`^cannot read trusted key file ${missing}: ENOENT`));
  });
});

describe('detached signatures', () => {
  it('reads <module>.sig as trimmed text', async () => {
    file('a.wasm.sig', ' c2ln\n');
    expect(await readDetachedSignature(join(dir, 'a.wasm'))).toBe('c2ln');
  });

  it('answers null when the module has no .sig file', async () => {
    expect(await readDetachedSignature(join(dir, 'unsigned.wasm'))).toBeNull();
  });

  it('reports a .sig that exists but cannot be read (here a directory) as a read error', async () => {
    mkdirSync(join(dir, 'odd.wasm.sig'));
    const err = await readDetachedSignature(join(dir, 'odd.wasm')).catch((e: unknown) => e as GatewayError);
    expect(err).toMatchObject({ code: 'GW_ERR_MODULE_READ' });
    expect((err as GatewayError).message).toMatch(/^cannot read signature file .*odd\.wasm\.sig: EISDIR/);
  });
});

describe.skipIf(!hasOpenssl)('openssl interoperability', () => {
  const key = file('openssl.key.pem', signer.privateKeyPem);
  const pub = file('openssl.pub.pem', signer.publicKeyPem);
  const wasm = join(dir, 'm.wasm');
  const digest = join(dir, 'm.sha');
  writeFileSync(wasm, MODULE);

  it('verifies what the documented openssl commands sign', () => {
    execFileSync('openssl', ['dgst', '-sha256', '-binary', '-out', digest, wasm]);
    const signature = execFileSync('openssl', ['pkeyutl', '-sign', '-rawin', '-inkey', key, '-in', digest]).toString('base64');
    expect(verifyModuleSignature(wasm, SHA, signature, loadTrustedKeys([pub]), true)).toBe(pub);
  });

  it('makes signatures openssl verifies', () => {
    execFileSync('openssl', ['dgst', '-sha256', '-binary', '-out', digest, wasm]);
    const sigFile = file('m.sig.bin', '');
    writeFileSync(sigFile, Buffer.from(signSha256(SHA, signer.privateKeyPem), 'base64'));
    const out = execFileSync('openssl', ['pkeyutl', '-verify', '-rawin', '-pubin', '-inkey', pub, '-in', digest, '-sigfile', sigFile]).toString();
    expect(out).toContain('Signature Verified Successfully');
  });
});
