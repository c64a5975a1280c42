/**
 * Signed modules end to end, through the real CLI and real gateway processes: keys made by
 * `edge-gateway keygen`, signatures by `edge-gateway sign`, and a module that is unsigned, signed by
 * another key or carries the signature of other bytes refused wherever it arrives: at load
 * (validate and start, exit 2), at a swap through the admin API or `edge-gateway swap`, and at
 * `edge-gateway push`, before anything reaches Redis.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliExit } from '../helpers/cli.js';
import { eventually } from '../helpers/eventually.js';
import { startUpstream } from '../helpers/gateway.js';
import { GATEWAY_TIME_SCALE } from '../helpers/gateway-command.js';
import { GatewayProcess, writeConfigFile, type LogLine } from '../helpers/gateway-process.js';
import { startRedis } from '../helpers/redis-server.js';
import { sha, stampVersion, versionFile } from '../helpers/versions.js';

const keys = mkdtempSync(join(tmpdir(), 'edge-gw-keys-'));
const TOKEN = 'signed-modules-token-0123456789';
const [V1, V2, V3] = ['version-one!', 'version-two!', 'version-3rd!'].map(stampVersion);
const PUB = join(keys, 'release.pub');

type Exit = CliExit;

/** Runs the CLI to completion (bounded) in `cwd` (default: the repository). */
const cli = (args: readonly string[], cwd?: string): Promise<Exit> => runCli(args, { cwd, timeoutMs: 30_000 });

/** `edge-gateway sign FILE --key KEY`, which must succeed; the signature text. */
async function signFile(file: string, key: string): Promise<string> {
  const out = await cli(['sign', file, '--key', key]);
  expect({ code: out.code, stderr: out.stderr }).toEqual({ code: 0, stderr: '' });
  return readFileSync(`${file}.sig`, 'utf8').trim();
}

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!().catch(() => undefined);
});
afterAll(() => rmSync(keys, { recursive: true, force: true }));

const unsigned = (file: string): string => `module ${file} is unsigned and a signature is required (requireSignature); sign its sha256 with one of modules.trustedKeys`;
const noKeyVerifies = (file: string, bytes: Uint8Array): string => `module ${file} (sha256 ${sha(bytes)}): its signature verifies against none of the 1 trusted keys (${PUB})`;
/** What validate prints for one plugin refused at load. */
const refusedAtLoad = (config: string, plugin: string, message: string): string =>
  `invalid configuration ${config}:\n  ${config}: plugins[0] (${plugin}): GW_ERR_MODULE_SIGNATURE: ${message}\n`;

/** A gateway configuration with one stamp plugin on every route. */
function config(module: string, modules: Record<string, unknown>, upstream = 'http://127.0.0.1:9', extra: Record<string, unknown> = {}): string {
  return writeConfigFile({
    modules,
    clusters: [{ name: 'backend', endpoints: [upstream] }],
    plugins: [{ name: 'stamp', module }],
    routes: [{ name: 'all', cluster: 'backend', filters: ['stamp'] }],
    ...extra,
  });
}

const required = { trustedKeys: [PUB], requireSignature: true };
/** Files: v1 signed with release.key, v2 unsigned, v2 signed by another key, v2 beside v1's .sig. */
const files = { v1: versionFile(V1, 'v1'), v2: versionFile(V2, 'v2'), v2Other: versionFile(V2, 'v2-other'), v2Copied: versionFile(V2, 'v2-copied') };
let v1Signature = '';

beforeAll(async () => {
  const made = await Promise.all([cli(['keygen', 'release'], keys), cli(['keygen', 'other'], keys)]);
  for (const out of made) expect({ code: out.code, stderr: out.stderr }).toEqual({ code: 0, stderr: '' });
  [v1Signature] = await Promise.all([signFile(files.v1, join(keys, 'release.key')), signFile(files.v2Other, join(keys, 'other.key'))]);
  copyFileSync(`${files.v1}.sig`, `${files.v2Copied}.sig`);
}, 60_000 * GATEWAY_TIME_SCALE);

async function servedBy(url: string): Promise<string | null> {
  const res = await fetch(`${url}/x`, { signal: AbortSignal.timeout(5000) });
  await res.text();
  return res.headers.get('x-served-by');
}

describe('signed modules through the CLI and real gateway processes', () => {
  it('keys made by keygen sign a module that a gateway requiring signatures validates and starts', async () => {
    expect(readFileSync(join(keys, 'release.key'), 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(statSync(join(keys, 'release.key')).mode & 0o777).toBe(0o600);
    expect(readFileSync(PUB, 'utf8')).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
    expect(Buffer.from(v1Signature, 'base64')).toHaveLength(64);

    const upstream = await startUpstream((_req, res) => res.end('ok\n'));
    cleanup.push(() => upstream.close());
    const file = config(files.v1, required, upstream.url);
    const checked = await cli(['validate', '--config', file]);
    expect(checked).toEqual({ code: 0, stdout: `${file}: valid: 1 plugin started, 1 route\n`, stderr: '' });
    const gw = await GatewayProcess.start(file);
    cleanup.push(() => gw.stop());
    expect(await servedBy(gw.url)).toBe('version-one!');
    const report = await (await fetch(`${gw.adminUrl}/plugins/stamp`)).json() as Record<string, any>;
    expect(report.stable).toMatchObject({ sha256: sha(V1), source: files.v1, signedBy: PUB, healthy: true });
  }, 60_000 * GATEWAY_TIME_SCALE);

  it('refuses at load an unsigned module, one signed by another key, a .sig of other bytes, and required signatures with no keys', async () => {
    const cases = [
      { module: files.v2, modules: required, says: unsigned(files.v2) },
      { module: files.v2Other, modules: required, says: noKeyVerifies(files.v2Other, V2) },
      { module: files.v2Copied, modules: required, says: noKeyVerifies(files.v2Copied, V2) },
      { module: files.v1, modules: { requireSignature: true }, says: `module ${files.v1} must be signed (requireSignature) but modules.trustedKeys is empty: no signature can be checked` },
    ].map((c) => ({ ...c, file: config(c.module, c.modules) }));
    const outs = await Promise.all(cases.map((c) => cli(['validate', '--config', c.file])));
    cases.forEach((c, i) => expect(outs[i]).toEqual({ code: 2, stdout: '', stderr: refusedAtLoad(c.file, 'stamp', c.says) }));

    // start refuses the same way, before it binds anything.
    const gw = GatewayProcess.launch(cases[0].file);
    cleanup.push(() => gw.stop());
    const exit = await Promise.race([gw.exited, new Promise<null>((r) => setTimeout(() => r(null), 30_000 * GATEWAY_TIME_SCALE))]);
    expect(exit).toEqual({ code: 2, signal: null });
    expect(gw.stderr).toBe(`edge-gateway: ${refusedAtLoad(cases[0].file, 'stamp', cases[0].says)}`);
    expect(gw.lines.some((l) => l.msg === 'edge-gateway started')).toBe(false);
  }, 60_000 * GATEWAY_TIME_SCALE);

  it('refuses an unsigned or wrongly signed swap through the admin API and the CLI, and takes a signed one', async () => {
    const upstream = await startUpstream((_req, res) => res.end('ok\n'));
    cleanup.push(() => upstream.close());
    const gw = await GatewayProcess.start(config(files.v1, required, upstream.url, { admin: { address: '127.0.0.1', port: 0, token: TOKEN } }));
    cleanup.push(() => gw.stop());
    const put = (bytes: Uint8Array, signature?: string): Promise<Response> => fetch(`${gw.adminUrl}/plugins/stamp/module`, {
      method: 'PUT', body: Buffer.from(bytes), signal: AbortSignal.timeout(10_000),
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/wasm', ...(signature === undefined ? {} : { 'x-module-signature': signature }) },
    });
    const upload = 'admin upload to stamp';

    const bare = await put(V2);
    expect(bare.status).toBe(422);
    expect(await bare.json()).toEqual({ error: 'GW_ERR_MODULE_SIGNATURE', message: unsigned(upload) });
    const wrong = await put(V2, v1Signature);
    expect(wrong.status).toBe(422);
    expect(await wrong.json()).toEqual({ error: 'GW_ERR_MODULE_SIGNATURE', message: noKeyVerifies(upload, V2) });
    expect(await servedBy(gw.url)).toBe('version-one!');

    const v2Signed = versionFile(V2, 'v2-signed');
    const signed = await put(V2, await signFile(v2Signed, join(keys, 'release.key')));
    expect(signed.status).toBe(200);
    expect(await signed.json()).toMatchObject({ sha256: sha(V2), stable: { sha256: sha(V2), source: upload, signedBy: PUB, healthy: true } });
    expect(await servedBy(gw.url)).toBe('version-two!');

    // The CLI sends FILE.sig with FILE when there is one.
    const v3 = versionFile(V3, 'v3');
    const refused = await cli(['swap', 'stamp', v3, '--admin', gw.adminUrl, '--token', TOKEN]);
    expect(refused).toEqual({ code: 1, stdout: '', stderr: `edge-gateway swap: HTTP 422 GW_ERR_MODULE_SIGNATURE: ${unsigned(upload)}\n` });
    expect(await servedBy(gw.url)).toBe('version-two!');
    await signFile(v3, join(keys, 'release.key'));
    const swapped = await cli(['swap', 'stamp', v3, '--admin', gw.adminUrl, '--token', TOKEN]);
    expect(swapped).toEqual({ code: 0, stdout: `stamp: healthy, stable ${sha(V3).slice(0, 12)} ${upload} signed by ${PUB}\n`, stderr: '' });
    expect(await servedBy(gw.url)).toBe('version-3rd!');
    const rejected = (): LogLine[] => gw.lines.filter((l) => l.msg.startsWith('plugin stamp: swap rejected, the running version keeps serving: '));
    expect(await eventually(() => rejected().length >= 3, 5000)).toBe(true);
    expect(rejected().map((l) => l.code)).toEqual(['GW_ERR_MODULE_SIGNATURE', 'GW_ERR_MODULE_SIGNATURE', 'GW_ERR_MODULE_SIGNATURE']);
  }, 90_000 * GATEWAY_TIME_SCALE);

  it('refuses to push an unsigned module where signatures are required, writing nothing to Redis', async () => {
    const redis = await startRedis();
    cleanup.push(() => redis.stop());
    const prefix = `signed-${process.pid}:`;
    const file = writeConfigFile({ modules: { registry: { url: redis.url, prefix }, ...required } });
    const push = (module: string): Promise<Exit> => cli(['push', module, '--tag', 't:stable', '--config', file]);
    const [bare, other] = await Promise.all([push(files.v2), push(files.v2Other)]);
    expect(bare).toEqual({ code: 1, stdout: '', stderr: `edge-gateway push: ${unsigned(files.v2)}\n` });
    expect(other).toEqual({ code: 1, stdout: '', stderr: `edge-gateway push: ${noKeyVerifies(files.v2Other, V2)}\n` });
    const client = redis.client();
    expect(await client.exists(`${prefix}tag:t:stable`)).toBe(0);
    expect(await client.keys('*')).toEqual([]);

    // The same command with a signed module goes through: bytes, signature, then the tag.
    const pushed = await push(files.v1);
    expect(pushed).toEqual({ code: 0, stdout: `pushed ${files.v1} (${sha(V1)}, signed) as t:stable\n`, stderr: '' });
    expect(await client.get(`${prefix}tag:t:stable`)).toBe(sha(V1));
    expect(await client.get(`${prefix}module:${sha(V1)}:sig`)).toBe(v1Signature);
  }, 60_000 * GATEWAY_TIME_SCALE);

  it('a per-plugin requireSignature refuses only that plugin\'s unsigned module', async () => {
    const lax = versionFile(V3, 'lax');
    const two = (strict: string, modules: Record<string, unknown>, laxRequires?: boolean): string => writeConfigFile({
      modules,
      clusters: [{ name: 'backend', endpoints: ['http://127.0.0.1:9'] }],
      plugins: [{ name: 'strict', module: strict, requireSignature: true }, { name: 'lax', module: lax, ...(laxRequires === undefined ? {} : { requireSignature: laxRequires }) }],
      routes: [{ name: 'all', cluster: 'backend', filters: ['strict', 'lax'] }],
    });
    const refusedFile = two(files.v2, { trustedKeys: [PUB], requireSignature: false });
    const passingFile = two(files.v1, { trustedKeys: [PUB], requireSignature: false });
    // And the other way round: a plugin may opt out of a global requirement.
    const optOutFile = two(files.v1, required, false);
    const [refused, passing, optOut] = await Promise.all([refusedFile, passingFile, optOutFile].map((f) => cli(['validate', '--config', f])));
    expect(refused).toEqual({ code: 2, stdout: '', stderr: refusedAtLoad(refusedFile, 'strict', unsigned(files.v2)) });
    expect(passing).toEqual({ code: 0, stdout: `${passingFile}: valid: 2 plugins started, 1 route\n`, stderr: '' });
    expect(optOut).toEqual({ code: 0, stdout: `${optOutFile}: valid: 2 plugins started, 1 route\n`, stderr: '' });
  }, 60_000 * GATEWAY_TIME_SCALE);
});
