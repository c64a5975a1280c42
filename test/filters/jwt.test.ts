/**
 * filters/jwt end to end: a real gateway on port 0 runs filters/dist/jwt.wasm (built by
 * test/global-setup.ts) in front of a real upstream. Tokens are made here with node:crypto (a
 * tiny signer: base64url header and payload, then HMAC-SHA256 or RSASSA-PKCS1-v1_5/SHA-256), so
 * every behaviour of filters/jwt/README.md is checked on the wire, configuration errors included.
 */
import { createHmac, generateKeyPairSync, sign as rsaSign, type KeyObject } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { filterHarness, startFilterGateway, type FilterGateway } from '../helpers/filter-gateway.js';
import type { Upstream } from '../helpers/gateway.js';
import { send, type Reply } from '../helpers/guests.js';

const MODULE = 'filters/dist/jwt.wasm';

// ---- the tiny signer ------------------------------------------------------------------------------

const b64u = (data: string | Buffer): string => Buffer.from(data).toString('base64url');

type Signer = { hs: string | Buffer } | { rs: KeyObject } | 'none';

/** A compact JWS from raw header and payload texts. */
function signRaw(headerText: string, payloadText: string, signer: Signer): string {
  const input = `${b64u(headerText)}.${b64u(payloadText)}`;
  if (signer === 'none') return `${input}.`;
  const sig = 'hs' in signer ? createHmac('sha256', signer.hs).update(input).digest() : rsaSign('sha256', Buffer.from(input), signer.rs);
  return `${input}.${b64u(sig)}`;
}

function jwt(header: Record<string, unknown>, payload: Record<string, unknown>, signer: Signer): string {
  return signRaw(JSON.stringify(header), JSON.stringify(payload), signer);
}

const nowSec = (): number => Math.floor(Date.now() / 1000);

// ---- keys -------------------------------------------------------------------------------------------

const HS_SECRET = 'a shared secret of at least 32 bytes!';
const HS_OTHER = 'another secret, also 32 bytes long at least';
const rs1 = generateKeyPairSync('rsa', { modulusLength: 2048 });
const rs2 = generateKeyPairSync('rsa', { modulusLength: 2048 });
const rsStranger = generateKeyPairSync('rsa', { modulusLength: 2048 });
const rs1Pem = rs1.publicKey.export({ type: 'spki', format: 'pem' }).toString();
const rs2Jwk = rs2.publicKey.export({ format: 'jwk' }) as { n: string; e: string };

const HS = { hs: HS_SECRET };
const RS1 = { rs: rs1.privateKey };
const RS2 = { rs: rs2.privateKey };

/** Claims that pass the main configuration; `extra` overrides or adds (undefined removes). */
function claims(extra: Record<string, unknown> = {}): Record<string, unknown> {
  const out: Record<string, unknown> = { sub: 'user-42', iss: 'https://issuer.example', aud: 'api', exp: nowSec() + 300, ...extra };
  for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
  return out;
}

const MAIN = {
  keys: [
    { kid: 'hs-1', alg: 'HS256', secret: HS_SECRET },
    { kid: 'rs-1', alg: 'RS256', pem: rs1Pem },
  ],
  jwks: { keys: [{ kid: 'rs-2', kty: 'RSA', alg: 'RS256', use: 'sig', n: rs2Jwk.n, e: rs2Jwk.e }] },
  issuers: ['https://issuer.example', 'https://other.example'],
  audiences: ['api', 'admin'],
  claimsToHeaders: { sub: 'x-user-id', level: 'x-level', admin: 'X-Admin', groups: 'x-groups', note: 'x-note' },
  bypass: ['/health', '/public/'],
  realm: 'api',
};

// ---- harness ----------------------------------------------------------------------------------------

/** The filter in front of a new upstream; the caller closes it. */
function setup(configuration: unknown): Promise<FilterGateway> {
  return startFilterGateway(MODULE, 'jwt', configuration);
}

/**
 * A GET with the request target exactly as given: `send` takes a URL, and WHATWG URL parsing
 * would resolve "/a/../b" and "%2e%2e" before the request leaves the client.
 */
function sendRaw(base: string, path: string, headers: Record<string, string> = {}): Promise<Reply> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: hostname, port, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, rawHeaders: res.rawHeaders, trailers: res.trailers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });

/** What a 401 for an invalid token must look like, exactly. */
function expectInvalid(reply: Reply, description: string, realm = 'api'): void {
  expect(reply.status).toBe(401);
  expect(reply.headers['www-authenticate']).toBe(`Bearer realm="${realm}", error="invalid_token", error_description="${description}"`);
  expect(reply.headers['content-type']).toBe('application/json');
  expect(JSON.parse(reply.body.toString())).toEqual({ error: 'invalid_token', message: description });
}

function expectMissing(reply: Reply, realm = 'api'): void {
  expect(reply.status).toBe(401);
  expect(reply.headers['www-authenticate']).toBe(`Bearer realm="${realm}"`);
  expect(reply.headers['content-type']).toBe('application/json');
  expect(JSON.parse(reply.body.toString())).toEqual({ error: 'missing_token', message: 'a bearer token is required' });
}

describe('the jwt filter', () => {
  let main: Awaited<ReturnType<typeof setup>>;
  let before = 0;
  beforeAll(async () => {
    main = await setup(MAIN);
  });
  afterAll(async () => {
    await main.close();
  });

  /** A request through the main gateway; `forwarded` is what the upstream saw (or undefined). */
  async function call(path: string, headers: Record<string, string> = {}): Promise<{ reply: Reply; forwarded: Upstream['requests'][number] | undefined }> {
    before = main.upstream.requests.length;
    const reply = await sendRaw(main.gw.url, path, headers);
    return { reply, forwarded: main.upstream.requests[before] };
  }

  /** The token is refused with `description`, and nothing reaches the upstream. */
  async function refused(token: string, description: string): Promise<void> {
    const { reply, forwarded } = await call('/api', bearer(token));
    expectInvalid(reply, description);
    expect(forwarded).toBeUndefined();
  }

  async function accepted(token: string, headers: Record<string, string> = bearer(token)): Promise<Upstream['requests'][number]> {
    const { reply, forwarded } = await call('/api', headers);
    expect(reply.status).toBe(200);
    expect(forwarded).toBeDefined();
    return forwarded!;
  }

  describe('valid tokens', () => {
    it('accepts an HS256 token and forwards the request, token included', async () => {
      const token = jwt({ alg: 'HS256', typ: 'JWT', kid: 'hs-1' }, claims(), HS);
      const seen = await accepted(token);
      expect(seen.url).toBe('/api');
      expect(seen.headers.authorization).toBe(`Bearer ${token}`);
      expect(seen.headers['x-user-id']).toBe('user-42');
    });

    it('accepts an RS256 token checked with a PEM public key', async () => {
      const seen = await accepted(jwt({ alg: 'RS256', kid: 'rs-1' }, claims({ sub: 'rs-user' }), RS1));
      expect(seen.headers['x-user-id']).toBe('rs-user');
    });

    it('accepts an RS256 token whose kid selects a key of the JWKS', async () => {
      const seen = await accepted(jwt({ alg: 'RS256', kid: 'rs-2' }, claims({ sub: 'jwks-user' }), RS2));
      expect(seen.headers['x-user-id']).toBe('jwks-user');
    });

    it('without a kid, tries every key of the token algorithm', async () => {
      await accepted(jwt({ alg: 'HS256' }, claims(), HS));
      await accepted(jwt({ alg: 'RS256' }, claims(), RS1));
      await accepted(jwt({ alg: 'RS256' }, claims(), RS2));
    });

    it('reads the Bearer scheme case-insensitively', async () => {
      const token = jwt({ alg: 'HS256', kid: 'hs-1' }, claims(), HS);
      await accepted(token, { authorization: `bearer ${token}` });
      await accepted(token, { authorization: `BEARER   ${token}` });
    });

    it('accepts any one allowed issuer and an aud array holding any one allowed audience', async () => {
      await accepted(jwt({ alg: 'HS256' }, claims({ iss: 'https://other.example', aud: ['someone-else', 'admin'] }), HS));
    });
  });

  describe('time claims', () => {
    it('refuses an expired token', async () => {
      await refused(jwt({ alg: 'HS256' }, claims({ exp: nowSec() - 3600 }), HS), 'the token has expired');
    });

    it('refuses a token that is not valid yet', async () => {
      await refused(jwt({ alg: 'HS256' }, claims({ nbf: nowSec() + 3600 }), HS), 'the token is not valid yet');
    });

    it('allows 60 seconds of clock skew by default, on both exp and nbf, and not more', async () => {
      await accepted(jwt({ alg: 'HS256' }, claims({ exp: nowSec() - 57 }), HS));
      await refused(jwt({ alg: 'HS256' }, claims({ exp: nowSec() - 63 }), HS), 'the token has expired');
      await accepted(jwt({ alg: 'HS256' }, claims({ nbf: nowSec() + 57 }), HS));
      await refused(jwt({ alg: 'HS256' }, claims({ nbf: nowSec() + 63 }), HS), 'the token is not valid yet');
    });

    it('uses the configured clockSkewSeconds', async () => {
      const gw = await setup({ ...MAIN, clockSkewSeconds: 0 });
      try {
        const expired = await send(`${gw.gw.url}/a`, { headers: bearer(jwt({ alg: 'HS256' }, claims({ exp: nowSec() - 3 }), HS)) });
        expectInvalid(expired, 'the token has expired');
        const early = await send(`${gw.gw.url}/a`, { headers: bearer(jwt({ alg: 'HS256' }, claims({ nbf: nowSec() + 3 }), HS)) });
        expectInvalid(early, 'the token is not valid yet');
        const fine = await send(`${gw.gw.url}/a`, { headers: bearer(jwt({ alg: 'HS256' }, claims({ nbf: nowSec() - 3, exp: nowSec() + 3 }), HS)) });
        expect(fine.status).toBe(200);
      } finally {
        await gw.close();
      }
    });

    it('requires exp unless requireExpiration is false', async () => {
      const token = jwt({ alg: 'HS256' }, claims({ exp: undefined }), HS);
      await refused(token, 'the token has no expiration time');
      const gw = await setup({ ...MAIN, requireExpiration: false });
      try {
        expect((await send(`${gw.gw.url}/a`, { headers: bearer(token) })).status).toBe(200);
      } finally {
        await gw.close();
      }
    });

    it('refuses exp or nbf that are not numbers', async () => {
      await refused(jwt({ alg: 'HS256' }, claims({ exp: String(nowSec() + 300) }), HS), 'the token exp claim is not a number');
      await refused(jwt({ alg: 'HS256' }, claims({ nbf: 'yesterday' }), HS), 'the token nbf claim is not a number');
    });
  });

  describe('issuer and audience', () => {
    it('refuses an issuer that is not allowed, or none', async () => {
      await refused(jwt({ alg: 'HS256' }, claims({ iss: 'https://evil.example' }), HS), 'the token issuer is not allowed');
      await refused(jwt({ alg: 'HS256' }, claims({ iss: undefined }), HS), 'the token issuer is not allowed');
      await refused(jwt({ alg: 'HS256' }, claims({ iss: ['https://issuer.example'] }), HS), 'the token issuer is not allowed');
    });

    it('refuses an audience that is not allowed, an array without an allowed one, or none', async () => {
      await refused(jwt({ alg: 'HS256' }, claims({ aud: 'billing' }), HS), 'the token audience is not allowed');
      await refused(jwt({ alg: 'HS256' }, claims({ aud: ['billing', 'metrics'] }), HS), 'the token audience is not allowed');
      await refused(jwt({ alg: 'HS256' }, claims({ aud: [] }), HS), 'the token audience is not allowed');
      await refused(jwt({ alg: 'HS256' }, claims({ aud: undefined }), HS), 'the token audience is not allowed');
    });

    it('checks neither when issuers and audiences are not configured', async () => {
      const gw = await setup({ keys: [{ alg: 'HS256', secret: HS_SECRET }] });
      try {
        const reply = await send(`${gw.gw.url}/a`, { headers: bearer(jwt({ alg: 'HS256' }, { exp: nowSec() + 60, iss: 'x', aud: 'y' }, HS)) });
        expect(reply.status).toBe(200);
      } finally {
        await gw.close();
      }
    });
  });

  describe('signatures and keys', () => {
    it('refuses a token whose payload was changed after signing', async () => {
      const token = jwt({ alg: 'HS256', kid: 'hs-1' }, claims(), HS);
      const [h, , s] = token.split('.');
      await refused(`${h}.${b64u(JSON.stringify(claims({ sub: 'admin' })))}.${s}`, 'the token signature is invalid');
      const rs = jwt({ alg: 'RS256', kid: 'rs-1' }, claims(), RS1).split('.');
      await refused(`${rs[0]}.${b64u(JSON.stringify(claims({ sub: 'admin' })))}.${rs[2]}`, 'the token signature is invalid');
    });

    it('refuses a token signed with another key', async () => {
      await refused(jwt({ alg: 'HS256', kid: 'hs-1' }, claims(), { hs: HS_OTHER }), 'the token signature is invalid');
      await refused(jwt({ alg: 'HS256' }, claims(), { hs: HS_OTHER }), 'the token signature is invalid');
      await refused(jwt({ alg: 'RS256', kid: 'rs-1' }, claims(), { rs: rsStranger.privateKey }), 'the token signature is invalid');
      await refused(jwt({ alg: 'RS256', kid: 'rs-2' }, claims(), RS1), 'the token signature is invalid');
      await refused(jwt({ alg: 'RS256' }, claims(), { rs: rsStranger.privateKey }), 'the token signature is invalid');
    });

    it('refuses a kid that no key has', async () => {
      await refused(jwt({ alg: 'HS256', kid: 'hs-9' }, claims(), HS), 'no key matches the token key id');
      await refused(jwt({ alg: 'RS256', kid: '' }, claims(), RS1), 'no key matches the token key id');
    });

    it('refuses alg none, however it is spelled, signed or not', async () => {
      await refused(jwt({ alg: 'none' }, claims(), 'none'), 'unsigned tokens (alg none) are not accepted');
      await refused(jwt({ alg: 'None', kid: 'hs-1' }, claims(), 'none'), 'unsigned tokens (alg none) are not accepted');
      await refused(jwt({ alg: 'NONE' }, claims(), HS), 'unsigned tokens (alg none) are not accepted');
    });

    it('refuses other algorithms and a missing alg', async () => {
      const reason = 'the token algorithm is missing or not supported (expected HS256 or RS256)';
      await refused(jwt({ alg: 'HS512', kid: 'hs-1' }, claims(), HS), reason);
      await refused(jwt({ alg: 'ES256' }, claims(), HS), reason);
      await refused(jwt({ alg: 'hs256' }, claims(), HS), reason);
      await refused(jwt({ typ: 'JWT' }, claims(), HS), reason);
      await refused(jwt({ alg: 256 }, claims(), HS), reason);
    });

    it('never uses an RSA public key as an HMAC secret (algorithm confusion)', async () => {
      // The attack: sign HS256 with the public key's text (or DER), which is public.
      const der = rs1.publicKey.export({ type: 'spki', format: 'der' });
      await refused(jwt({ alg: 'HS256', kid: 'rs-1' }, claims(), { hs: rs1Pem }), 'the token algorithm does not match its key');
      await refused(jwt({ alg: 'HS256', kid: 'rs-2' }, claims(), { hs: der }), 'the token algorithm does not match its key');
      await refused(jwt({ alg: 'HS256' }, claims(), { hs: rs1Pem }), 'the token signature is invalid');
      // And the other way round: an HS256 key is not tried for RS256.
      await refused(jwt({ alg: 'RS256', kid: 'hs-1' }, claims(), RS1), 'the token algorithm does not match its key');
    });

    it('checks a token whose kid no key has with the keys that have no kid', async () => {
      const gw = await setup({ keys: [{ kid: 'hs-1', alg: 'HS256', secret: HS_OTHER }, { alg: 'RS256', pem: rs1Pem }, { alg: 'HS256', secret: HS_SECRET }] });
      try {
        const at = async (token: string): Promise<Reply> => send(`${gw.gw.url}/a`, { headers: bearer(token) });
        expect((await at(jwt({ alg: 'RS256', kid: 'from-the-idp' }, claims(), RS1))).status).toBe(200);
        expect((await at(jwt({ alg: 'HS256', kid: 'from-the-idp' }, claims(), HS))).status).toBe(200);
        // A kid that a key has selects that key only.
        expectInvalid(await at(jwt({ alg: 'HS256', kid: 'hs-1' }, claims(), HS)), 'the token signature is invalid', 'edge-gateway');
        expect((await at(jwt({ alg: 'HS256', kid: 'hs-1' }, claims(), { hs: HS_OTHER }))).status).toBe(200);
        expectInvalid(await at(jwt({ alg: 'RS256', kid: 'x' }, claims(), RS2)), 'the token signature is invalid', 'edge-gateway');
        // The kid-less RSA key is still never an HMAC secret.
        expectInvalid(await at(jwt({ alg: 'HS256', kid: 'from-the-idp' }, claims(), { hs: rs1Pem })), 'the token signature is invalid', 'edge-gateway');
      } finally {
        await gw.close();
      }
    });

    it('answers that no key exists for the algorithm when only keys of the other one are configured', async () => {
      const gw = await setup({ keys: [{ alg: 'RS256', pem: rs1Pem }] });
      try {
        expectInvalid(await send(`${gw.gw.url}/a`, { headers: bearer(jwt({ alg: 'HS256' }, claims(), { hs: rs1Pem })) }),
          'no key is configured for the token algorithm', 'edge-gateway');
      } finally {
        await gw.close();
      }
    });

    it('refuses a token with critical header parameters', async () => {
      await refused(jwt({ alg: 'HS256', crit: ['exp'], exp: 1 }, claims(), HS), 'the token has critical header parameters that are not supported');
    });
  });

  describe('malformed tokens', () => {
    const good = (): string => jwt({ alg: 'HS256', kid: 'hs-1' }, claims(), HS);

    it('refuses a token that is not three dot-separated parts', async () => {
      const reason = 'the token must be three base64url parts separated by dots';
      const [h, p, s] = good().split('.');
      await refused(`${h}.${p}`, reason);
      await refused(`${h}.${p}.${s}.${s}`, reason);
      await refused('not-a-jwt', reason);
    });

    it('refuses parts that are not base64url', async () => {
      const reason = 'the token is not valid base64url';
      const [h, p, s] = good().split('.');
      await refused(`${h}.${p}.${Buffer.from(s, 'base64url').toString('base64')}=`, reason);
      await refused(`${h}.${p}!.${s}`, reason);
      await refused(`${h}=.${p}.${s}`, reason);
      // The same signature bytes with non-zero pad bits in the last character (RFC 4648 §3.5): not canonical.
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
      expect(s.length % 4).toBe(3);
      await refused(`${h}.${p}.${s.slice(0, -1)}${alphabet[alphabet.indexOf(s.slice(-1)) | 1]}`, reason);
    });

    it('refuses a header that is not a JSON object', async () => {
      const reason = 'the token header is not a JSON object';
      await refused(signRaw('{"alg":"HS256"', JSON.stringify(claims()), HS), reason);
      await refused(signRaw('["HS256"]', JSON.stringify(claims()), HS), reason);
      await refused(signRaw('', JSON.stringify(claims()), HS), reason);
      await refused(jwt({ alg: 'HS256', kid: 7 }, claims(), HS), reason);
    });

    it('refuses a correctly signed payload that is not a JSON object', async () => {
      const reason = 'the token payload is not a JSON object';
      await refused(signRaw('{"alg":"HS256"}', '{"sub":"x",', HS), reason);
      await refused(signRaw('{"alg":"HS256"}', '"just a string"', HS), reason);
      await refused(signRaw('{"alg":"RS256","kid":"rs-1"}', 'not json', RS1), reason);
    });

    it('refuses a token longer than 8192 characters', async () => {
      const long = jwt({ alg: 'HS256' }, claims({ pad: 'x'.repeat(6100) }), HS);
      expect(long.length).toBeGreaterThan(8192);
      await refused(long, 'the token is too long');
    });
  });

  describe('missing token', () => {
    it('answers 401 with a challenge without an error code (RFC 6750 §3.1)', async () => {
      const { reply, forwarded } = await call('/api');
      expectMissing(reply);
      expect(forwarded).toBeUndefined();
    });

    it('counts another scheme, or Bearer without a token, as no token', async () => {
      expectMissing((await call('/api', { authorization: 'Basic dXNlcjpwYXNz' })).reply);
      expectMissing((await call('/api', { authorization: 'Bearer' })).reply);
      expectMissing((await call('/api', { authorization: 'Bearertoken' })).reply);
    });

    it('does not read the query string unless queryParameter is configured', async () => {
      expectMissing((await call(`/api?access_token=${jwt({ alg: 'HS256' }, claims(), HS)}`)).reply);
    });
  });

  describe('claims to headers', () => {
    it('copies string, number and boolean claims, as written', async () => {
      const seen = await accepted(jwt({ alg: 'HS256' }, claims({ level: 3.50, admin: true }), HS));
      expect([seen.headers['x-user-id'], seen.headers['x-level'], seen.headers['x-admin']]).toEqual(['user-42', '3.5', 'true']);
      const raw = signRaw('{"alg":"HS256"}', `{"sub":"u","iss":"https://issuer.example","aud":"api","exp":${nowSec() + 60},"level":1.50e1,"admin":false}`, HS);
      const seen2 = await accepted(raw);
      expect([seen2.headers['x-level'], seen2.headers['x-admin']]).toEqual(['1.50e1', 'false']);
    });

    it('does not copy objects, arrays, null or values with control characters', async () => {
      const seen = await accepted(jwt({ alg: 'HS256' }, claims({ groups: ['a', 'b'], level: { n: 1 }, admin: null, note: 'one\r\nx-injected: yes' }), HS));
      expect([seen.headers['x-groups'], seen.headers['x-level'], seen.headers['x-admin'], seen.headers['x-note'], seen.headers['x-injected']])
        .toEqual([undefined, undefined, undefined, undefined, undefined]);
    });

    it('removes claim headers the client sent, whether or not the token has the claim', async () => {
      const token = jwt({ alg: 'HS256' }, claims({ sub: 'real' }), HS);
      const seen = await accepted(token, { ...bearer(token), 'x-user-id': 'forged', 'x-admin': 'true', 'x-other': 'kept' });
      expect([seen.headers['x-user-id'], seen.headers['x-admin'], seen.headers['x-other']]).toEqual(['real', undefined, 'kept']);
    });
  });

  describe('bypass paths', () => {
    it('lets paths under a bypass prefix through without a token, at segment boundaries', async () => {
      for (const path of ['/health', '/health/live', '/health?probe=1', '/public/', '/public/logo.png', '/public/a.b/..c', '/health?next=/../x']) {
        const { reply, forwarded } = await call(path);
        expect(reply.status, path).toBe(200);
        expect(forwarded!.url).toBe(path);
      }
    });

    // The gateway normalizes paths before filters: '/health/./x' and '/health/.' reach the filter as '/health/x' and '/health/' (a bypass path, and the upstream gets the same).
    it('still requires a token for lookalike paths and paths that could be normalised elsewhere', async () => {
      for (const path of ['/healthz', '/public', '/api/health', '/public/../admin', '/health/..', '/public/%2e%2e/admin', '/public/.%2e/admin', '/public\\..\\admin']) {
        const { reply, forwarded } = await call(path);
        expect([path, reply.status]).toEqual([path, 401]);
        expectMissing(reply);
        expect(forwarded, path).toBeUndefined();
      }
    });

    it('removes claim headers the client sent on bypass paths too', async () => {
      const { forwarded } = await call('/health', { 'x-user-id': 'forged' });
      expect(forwarded!.headers['x-user-id']).toBeUndefined();
    });

    it('ignores a token on a bypass path, even an invalid one', async () => {
      const { reply, forwarded } = await call('/public/x', bearer('garbage'));
      expect(reply.status).toBe(200);
      expect(forwarded!.headers.authorization).toBe('Bearer garbage');
    });
  });

  describe('where the token comes from', () => {
    let custom: Awaited<ReturnType<typeof setup>>;
    beforeAll(async () => {
      custom = await setup({ keys: [{ alg: 'HS256', secret: HS_SECRET }], header: 'X-Token', queryParameter: 'access_token', realm: 'files' });
    });
    afterAll(async () => {
      await custom.close();
    });

    async function through(path: string, headers: Record<string, string> = {}): Promise<{ reply: Reply; seen: Upstream['requests'][number] | undefined }> {
      const n = custom.upstream.requests.length;
      const reply = await send(`${custom.gw.url}${path}`, { headers });
      return { reply, seen: custom.upstream.requests[n] };
    }

    it('reads a configured header, with or without the Bearer prefix, and ignores Authorization', async () => {
      const token = jwt({ alg: 'HS256' }, { exp: nowSec() + 60 }, HS);
      expect((await through('/f', { 'x-token': token })).reply.status).toBe(200);
      expect((await through('/f', { 'x-token': `Bearer ${token}` })).reply.status).toBe(200);
      expectMissing((await through('/f', bearer(token))).reply, 'files');
      expectInvalid((await through('/f', { 'x-token': 'a.b' })).reply, 'the token must be three base64url parts separated by dots', 'files');
    });

    it('reads the query parameter when the header is absent, and forwards both untouched by default', async () => {
      const token = jwt({ alg: 'HS256' }, { exp: nowSec() + 60 }, HS);
      const { reply, seen } = await through(`/f?x=1&access_token=${token}&y=2`);
      expect(reply.status).toBe(200);
      expect(seen!.url).toBe(`/f?x=1&access_token=${token}&y=2`);
      const withHeader = await through('/f', { 'x-token': token });
      expect(withHeader.seen!.headers['x-token']).toBe(token);
    });

    it('prefers the header to the query parameter', async () => {
      const token = jwt({ alg: 'HS256' }, { exp: nowSec() + 60 }, HS);
      const { reply } = await through(`/f?access_token=${token}`, { 'x-token': 'bad.to.ken' });
      expectInvalid(reply, 'the token is not valid base64url', 'files');
      expectMissing((await through('/f?access_token=')).reply, 'files');
      expectMissing((await through('/f?my_access_token=x')).reply, 'files');
    });

    it('removes the token from the forwarded request with removeToken', async () => {
      const gw = await setup({ keys: [{ alg: 'HS256', secret: HS_SECRET }], queryParameter: 'access_token', removeToken: true });
      try {
        const token = jwt({ alg: 'HS256' }, { exp: nowSec() + 60 }, HS);
        await send(`${gw.gw.url}/q?x=1&access_token=${token}&y=2`);
        await send(`${gw.gw.url}/q?access_token=${token}`);
        await send(`${gw.gw.url}/q?access_token=${token}&a=1&access_token=second&access_token`);
        await send(`${gw.gw.url}/h?keep=1`, { headers: { ...bearer(token), 'x-keep': 'yes' } });
        await send(`${gw.gw.url}/b?access_token=${token}`, { headers: { authorization: 'Basic dXNlcjpwYXNz' } });
        const [q1, q2, q3, h, basic] = gw.upstream.requests;
        expect([q1.url, q2.url, q3.url, h.url, basic.url]).toEqual(['/q?x=1&y=2', '/q', '/q?a=1', '/h?keep=1', '/b']);
        expect(h.headers.authorization).toBeUndefined();
        expect(basic.headers.authorization).toBe('Basic dXNlcjpwYXNz');
        expect(h.headers['x-keep']).toBe('yes');
      } finally {
        await gw.close();
      }
    });
  });

  it('does what the README example says', async () => {
    const gw = await setup({
      keys: [{ kid: 'hs-2024', alg: 'HS256', secret: HS_SECRET }, { kid: 'rs-2024', alg: 'RS256', pem: rs1Pem }],
      issuers: ['https://auth.example.com'],
      audiences: ['orders-api'],
      claimsToHeaders: { sub: 'x-user-id', tenant: 'x-tenant-id' },
      removeToken: true,
      bypass: ['/health'],
      realm: 'orders',
    });
    try {
      const token = jwt({ alg: 'RS256', kid: 'rs-2024' },
        { sub: 'u-1', tenant: 't-9', iss: 'https://auth.example.com', aud: ['orders-api'], exp: nowSec() + 300 }, RS1);
      const ok = await send(`${gw.gw.url}/orders`, { headers: { ...bearer(token), 'x-user-id': 'forged' } });
      expect(ok.status).toBe(200);
      const seen = gw.upstream.requests[0];
      expect([seen.headers['x-user-id'], seen.headers['x-tenant-id'], seen.headers.authorization]).toEqual(['u-1', 't-9', undefined]);
      expectMissing(await send(`${gw.gw.url}/orders`), 'orders');
      const expired = jwt({ alg: 'RS256', kid: 'rs-2024' },
        { sub: 'u-1', iss: 'https://auth.example.com', aud: 'orders-api', exp: nowSec() - 3600 }, RS1);
      expectInvalid(await send(`${gw.gw.url}/orders`, { headers: bearer(expired) }), 'the token has expired', 'orders');
      expect((await send(`${gw.gw.url}/health`)).status).toBe(200);
      expect(gw.upstream.requests.length).toBe(2);
    } finally {
      await gw.close();
    }
  });

  describe('configuration errors refuse the plugin at load', () => {
    const h = filterHarness(MODULE, 'jwt');

    const hs = { alg: 'HS256', secret: HS_SECRET };
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey;
    const smallPem = small.export({ type: 'spki', format: 'pem' }).toString();
    const pkcs1Pem = rs1.publicKey.export({ type: 'pkcs1', format: 'pem' }).toString();
    const privatePem = rs1.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const privateJwk = rs1.privateKey.export({ format: 'jwk' });
    const ecJwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });

    const cases: Array<[string, unknown, string]> = [
      ['no configuration', '', 'configuration is empty; expected a JSON object such as {"keys":[{"alg":"HS256","secret":"…"}]}'],
      ['text that is not JSON', '{"keys": [', 'configuration is not valid JSON: unexpected end of input at line 1, column 11'],
      ['not an object', ['x'], 'configuration must be a JSON object such as {"keys":[{"alg":"HS256","secret":"…"}]}, got an array'],
      ['an unknown key', { keys: [hs], issuer: 'x' }, 'unknown key "issuer" (expected one of keys, jwks, issuers, audiences, clockSkewSeconds,'],
      ['no keys at all', { issuers: ['x'] }, 'configuration has no keys: give "keys" and/or "jwks" at least one key'],
      ['empty keys', { keys: [] }, 'configuration has no keys'],
      ['an empty JWKS', { jwks: { keys: [] } }, 'configuration has no keys'],
      ['keys that is not an array', { keys: hs }, '"keys" must be an array of keys, got an object'],
      ['a key that is not an object', { keys: ['secret'] }, '"keys[0]" must be an object such as {"alg":"HS256","secret":"…"}, got a string'],
      ['a key without alg', { keys: [{ secret: HS_SECRET }] }, '"keys[0]" has no "alg" (expected "HS256" or "RS256")'],
      ['an unknown alg', { keys: [hs, { alg: 'ES256', pem: rs1Pem }] }, '"keys[1].alg" is "ES256", which is not supported (expected "HS256" or "RS256")'],
      ['alg none', { keys: [{ alg: 'none' }] }, '"keys[0].alg" is "none", which is not supported'],
      ['an HS256 key without secret', { keys: [{ alg: 'HS256' }] }, '"keys[0]" is an HS256 key without "secret"'],
      ['a short secret', { keys: [{ alg: 'HS256', secret: 'short' }] }, '"keys[0].secret" is 5 bytes; HS256 needs at least 32 (RFC 7518 §3.2)'],
      ['a secret that is not base64url', { keys: [{ alg: 'HS256', secret: 'a+b/c==', encoding: 'base64url' }] }, '"keys[0].secret" is not valid base64url'],
      ['a short base64url secret', { keys: [{ alg: 'HS256', secret: b64u('x'.repeat(31)), encoding: 'base64url' }] }, '"keys[0].secret" is 31 bytes'],
      ['an unknown encoding', { keys: [{ alg: 'HS256', secret: HS_SECRET, encoding: 'hex' }] }, '"keys[0].encoding" must be "text" or "base64url"'],
      ['an unknown key member', { keys: [{ alg: 'HS256', secret: HS_SECRET, pem: rs1Pem }] }, 'unknown member "keys[0].pem" (expected kid, alg, secret, encoding)'],
      ['an RS256 key without pem', { keys: [{ alg: 'RS256' }] }, '"keys[0]" is an RS256 key without "pem"'],
      ['a bad PEM', { keys: [{ alg: 'RS256', pem: '-----BEGIN PUBLIC KEY-----\nnot base64!\n-----END PUBLIC KEY-----\n' }] },
        '"keys[0].pem" is not an RSA public key in PEM (expected -----BEGIN PUBLIC KEY----- or -----BEGIN RSA PUBLIC KEY-----)'],
      ['a PEM with a truncated body', { keys: [{ alg: 'RS256', pem: rs1Pem.replace(/\n[A-Za-z0-9+/=]+\n-----END/, '\n-----END') }] }, '"keys[0].pem" is not an RSA public key in PEM'],
      ['a private key PEM', { keys: [{ alg: 'RS256', pem: privatePem }] }, '"keys[0].pem" is not an RSA public key in PEM'],
      ['an RSA key below 2048 bits', { keys: [{ alg: 'RS256', pem: smallPem }] }, '"keys[0].pem" is not a usable RS256 key (the modulus must be odd and 2048 to 4096 bits'],
      ['an empty kid', { keys: [{ kid: '', ...hs }] }, '"keys[0].kid" must not be empty'],
      ['a kid that is not a string', { keys: [{ kid: 1, ...hs }] }, '"keys[0].kid" must be a string, got a number'],
      ['two keys with one kid', { keys: [{ kid: 'k', ...hs }, { kid: 'k', alg: 'RS256', pem: pkcs1Pem }] }, 'two keys have the key id "k"; key ids must be unique'],
      ['a JWKS that is not a JWK set', { jwks: [rs2Jwk] }, '"jwks" must be a JWK set such as {"keys":[{"kty":"RSA","kid":"…","n":"…","e":"AQAB"}]}'],
      ['a JWKS string that is not JSON', { jwks: '{"keys":' }, '"jwks" is a string that is not valid JSON: unexpected end of input'],
      ['a JWK that is not RSA', { jwks: { keys: [{ kid: 'ec', ...ecJwk }] } }, '"jwks.keys[0].kty" is "EC", which is not supported (only "RSA", for RS256)'],
      ['a JWK of another alg', { jwks: { keys: [{ kid: 'r', kty: 'RSA', alg: 'RS512', n: rs2Jwk.n, e: rs2Jwk.e }] } }, '"jwks.keys[0].alg" must be "RS256" when present'],
      ['a JWK for encryption', { jwks: { keys: [{ kid: 'r', kty: 'RSA', use: 'enc', n: rs2Jwk.n, e: rs2Jwk.e }] } }, '"jwks.keys[0].use" must be "sig" when present'],
      ['a private JWK', { jwks: { keys: [{ kid: 'r', ...privateJwk }] } }, '"jwks.keys[0]" is a private key (it has "d"); configure the public key only'],
      ['a JWK without n', { jwks: { keys: [{ kid: 'r', kty: 'RSA', e: 'AQAB' }] } }, '"jwks.keys[0]" must have "n" and "e" as base64url strings'],
      ['a JWK with bad base64url', { jwks: { keys: [{ kid: 'r', kty: 'RSA', n: `${rs2Jwk.n}=`, e: 'AQAB' }] } }, '"jwks.keys[0]" has "n" or "e" that is not valid base64url or is zero'],
      ['a JWK with exponent 1', { jwks: { keys: [{ kid: 'r', kty: 'RSA', n: rs2Jwk.n, e: 'AQ' }] } }, '"jwks.keys[0]" is not a usable RS256 key'],
      ['issuers that is not a list', { keys: [hs], issuers: 5 }, '"issuers" must be a string or an array of strings, got a number'],
      ['an empty audiences list', { keys: [hs], audiences: [] }, '"audiences" is an empty list: nothing would be allowed; leave it out to accept any'],
      ['an audience that is not a string', { keys: [hs], audiences: ['api', 1] }, '"audiences[1]" must be a string, got a number'],
      ['an empty issuer', { keys: [hs], issuers: '' }, '"issuers" must not be empty'],
      ['a skew above a day', { keys: [hs], clockSkewSeconds: 86401 }, '"clockSkewSeconds" must be a whole number of seconds from 0 to 86400'],
      ['a negative skew', { keys: [hs], clockSkewSeconds: -1 }, '"clockSkewSeconds" must be a whole number of seconds from 0 to 86400'],
      ['a fractional skew', { keys: [hs], clockSkewSeconds: 1.5 }, '"clockSkewSeconds" must be a whole number of seconds from 0 to 86400'],
      ['a skew given as text', { keys: [hs], clockSkewSeconds: '60' }, '"clockSkewSeconds" must be a whole number of seconds'],
      ['requireExpiration that is not a boolean', { keys: [hs], requireExpiration: 'no' }, '"requireExpiration" must be true or false, got a string'],
      ['removeToken that is not a boolean', { keys: [hs], removeToken: 1 }, '"removeToken" must be true or false, got a number'],
      ['an invalid header name', { keys: [hs], header: 'x token' }, '"header" has an invalid header name "x token"'],
      ['a query parameter with &', { keys: [hs], queryParameter: 'a&b' }, '"queryParameter" "a&b" must be a plain name'],
      ['an empty query parameter', { keys: [hs], queryParameter: '' }, '"queryParameter" must not be empty'],
      ['a realm with a quote', { keys: [hs], realm: 'a"b' }, '"realm" may hold printable ASCII only, without \'"\' or \'\\\''],
      ['claimsToHeaders that is not an object', { keys: [hs], claimsToHeaders: ['sub'] }, '"claimsToHeaders" must be an object of claim names to header names, got an array'],
      ['a claim header that is not a string', { keys: [hs], claimsToHeaders: { sub: true } }, '"claimsToHeaders.sub" must be a header name (a string), got a boolean'],
      ['a claim header that is a pseudo-header', { keys: [hs], claimsToHeaders: { sub: ':path' } }, '"claimsToHeaders.sub" has an invalid header name ":path"'],
      ['a claim header that controls framing', { keys: [hs], claimsToHeaders: { sub: 'Content-Length' } }, '"claimsToHeaders.sub" cannot be "content-length"'],
      ['a claim header that is host', { keys: [hs], claimsToHeaders: { aud: 'Host' } }, '"claimsToHeaders.aud" cannot be "host": it controls how the request is routed or framed'],
      ['bypass that is not a list', { keys: [hs], bypass: '/health' }, '"bypass" must be an array of path prefixes, got a string'],
      ['a bypass entry without a leading slash', { keys: [hs], bypass: ['health'] }, '"bypass[0]" must be a path prefix starting with "/"'],
      ['a bypass entry with a dot segment', { keys: [hs], bypass: ['/a/../b'] }, '"bypass[0]" must be a plain path (no ?, #, % or dot segments)'],
    ];

    for (const [what, configuration, reason] of cases) {
      it(`refuses ${what}`, async () => {
        const error = await h.refused(configuration);
        expect(error.message).toContain(`(guest said: jwt: ${reason}`);
      });
    }

    it('accepts a JWKS given as JSON text (other JWK members ignored) and a PKCS#1 PEM', async () => {
      const gw = await setup({ jwks: JSON.stringify({ keys: [{ kid: 'rs-2', kty: 'RSA', n: rs2Jwk.n, e: rs2Jwk.e, x5t: 'ignored', key_ops: ['verify'] }] }), keys: [{ kid: 'rs-1', alg: 'RS256', pem: pkcs1Pem }] });
      try {
        expect((await send(`${gw.gw.url}/a`, { headers: bearer(jwt({ alg: 'RS256', kid: 'rs-2' }, claims(), RS2)) })).status).toBe(200);
        expect((await send(`${gw.gw.url}/a`, { headers: bearer(jwt({ alg: 'RS256', kid: 'rs-1' }, claims(), RS1)) })).status).toBe(200);
      } finally {
        await gw.close();
      }
    });

    it('accepts a base64url HS256 secret', async () => {
      const raw = Buffer.from(Array.from({ length: 32 }, (_, i) => i * 7));
      const gw = await setup({ keys: [{ alg: 'HS256', secret: b64u(raw), encoding: 'base64url' }] });
      try {
        expect((await send(`${gw.gw.url}/a`, { headers: bearer(jwt({ alg: 'HS256' }, claims(), { hs: raw })) })).status).toBe(200);
      } finally {
        await gw.close();
      }
    });
  });
});
