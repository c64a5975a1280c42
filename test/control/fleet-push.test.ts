/**
 * The module registry as a fleet uses it: a real redis-server, real `edge-gateway start` nodes and
 * the real `edge-gateway push` command. A push moves a tag every node follows; a node that starts
 * while Redis is down runs what its cache directory holds (and says so); a node cut off from Redis
 * while a tag moves catches up once it can reach Redis again.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { runCli, type CliExit } from '../helpers/cli.js';
import { eventually } from '../helpers/eventually.js';
import { startUpstream } from '../helpers/gateway.js';
import { GatewayProcess, writeConfigFile } from '../helpers/gateway-process.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { sha, stampVersion, versionFile } from '../helpers/versions.js';

const dir = mkdtempSync(join(tmpdir(), 'edge-gw-fleet-'));
const V1 = stampVersion('version-one!');
const V2 = stampVersion('version-two!');
const TAG = 'stamp:stable';
let unique = 0;

const cli = (args: readonly string[]): Promise<CliExit> => runCli(args, { timeoutMs: 30_000 });

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!().catch(() => undefined);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function redis(): Promise<RedisServer> {
  const server = await startRedis();
  cleanup.push(() => server.stop());
  return server;
}

async function upstream(): Promise<string> {
  const up = await startUpstream((_req, res) => res.end('ok\n'));
  cleanup.push(() => up.close());
  return up.url;
}

/** `edge-gateway push FILE --tag stamp:stable --redis URL --prefix P`, which must succeed. */
async function push(bytes: Uint8Array, url: string, prefix: string): Promise<void> {
  const file = versionFile(bytes, 'push');
  const out = await cli(['push', file, '--tag', TAG, '--redis', url, '--prefix', prefix]);
  expect({ code: out.code, stderr: out.stderr }).toEqual({ code: 0, stderr: '' });
  expect(out.stdout).toBe(`pushed ${file} (${sha(bytes)}, unsigned) as ${TAG}\n`);
}

/** A node's configuration: the stamp plugin follows the tag in the registry at `url`. */
function nodeConfig(url: string, prefix: string, cacheDir: string, upstreamUrl: string): string {
  return writeConfigFile({
    modules: { registry: { url, prefix }, cacheDir },
    clusters: [{ name: 'backend', endpoints: [upstreamUrl] }],
    plugins: [{ name: 'stamp', module: { redis: TAG } }],
    routes: [{ name: 'all', cluster: 'backend', filters: ['stamp'] }],
  });
}

async function node(config: string): Promise<GatewayProcess> {
  const gw = await GatewayProcess.start(config);
  cleanup.push(() => gw.stop());
  return gw;
}

async function servedBy(gw: GatewayProcess): Promise<string | null> {
  const res = await fetch(`${gw.url}/x`, { signal: AbortSignal.timeout(5000) });
  await res.text();
  return res.headers.get('x-served-by');
}

const registryLine = (bytes: Uint8Array): string => `plugin stamp: registry: module ${sha(bytes)} (redis ${TAG}) serves new streams`;
const freshDir = (): string => mkdtempSync(join(dir, 'cache-'));
const freshPrefix = (): string => `fleet-${process.pid}-${unique++}:`;

describe('pushing modules to a fleet through a real redis-server', () => {
  it('a push reaches two nodes through a real redis-server', async () => {
    const [server, up] = await Promise.all([redis(), upstream()]);
    const prefix = freshPrefix();
    await push(V1, server.url, prefix);
    const nodes = await Promise.all([0, 1].map(() => node(nodeConfig(server.url, prefix, freshDir(), up))));
    for (const gw of nodes) expect(await servedBy(gw)).toBe('version-one!');

    // The moment of the push: when the registry's channel carries it (as the nodes hear it).
    const listener = server.client();
    let pushedAt = 0;
    listener.on('message', (_channel: string, message: string) => { if (message === `${TAG} ${sha(V2)}`) pushedAt = Date.now(); });
    await listener.subscribe(`${prefix}modules`);
    const serving: number[] = [0, 0];
    const polls = nodes.map(async (gw, i) => {
      const deadline = Date.now() + 60_000; // bounds the CLI's start too; the 1.5 s is asserted below
      while (Date.now() < deadline) {
        if (pushedAt !== 0 && await servedBy(gw) === 'version-two!') return void (serving[i] = Date.now() - pushedAt);
        await new Promise((r) => setTimeout(r, 10));
      }
    });
    await push(V2, server.url, prefix);
    await Promise.all(polls);
    expect(pushedAt).toBeGreaterThan(0);
    for (const ms of serving) {
      expect(ms).toBeGreaterThan(0);
      expect(ms).toBeLessThanOrEqual(1500);
    }
    for (const gw of nodes) {
      await gw.waitFor((l) => l.msg === registryLine(V2), 'the registry swap', 5000);
      expect(gw.lines.some((l) => l.msg === `plugin stamp: registry tag ${TAG} moved to ${sha(V2)}`)).toBe(true);
      expect(await servedBy(gw)).toBe('version-two!');
    }
  }, 90_000);

  it('a node that starts while Redis is down serves the module it had, from its cache, and says so', async () => {
    const [server, up] = await Promise.all([redis(), upstream()]);
    const prefix = freshPrefix();
    const cacheDir = freshDir();
    const config = nodeConfig(server.url, prefix, cacheDir, up);
    await push(V1, server.url, prefix);
    const first = await node(config);
    expect(await servedBy(first)).toBe('version-one!');
    await first.stop();
    await server.kill();

    const again = await node(config);
    expect(await servedBy(again)).toBe('version-one!');
    const source = `redis ${TAG} (from the local cache: the registry is unreachable)`;
    const report = await (await fetch(`${again.adminUrl}/plugins/stamp`)).json() as Record<string, any>;
    expect(report).toMatchObject({ name: 'stamp', sha256: sha(V1), module: source, stable: { sha256: sha(V1), source, healthy: true, signedBy: null } });

    // With nothing cached there is nothing to run: the node refuses to start, saying why.
    const empty = freshDir();
    const emptyConfig = nodeConfig(server.url, prefix, empty, up);
    const refused = GatewayProcess.launch(emptyConfig);
    cleanup.push(() => refused.stop());
    const exit = await Promise.race([refused.exited, new Promise<null>((r) => setTimeout(() => r(null), 30_000))]);
    expect(exit).toEqual({ code: 2, signal: null });
    // The reason in brackets is ioredis's last error, or none yet if the 1 s wait ran out first.
    const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    expect(refused.stderr).toMatch(new RegExp(`^${escape(`edge-gateway: invalid configuration ${emptyConfig}:\n  ${emptyConfig}: plugins[0] (stamp): `
      + `GW_ERR_MODULE_REGISTRY: cannot resolve module ${TAG}: Redis redis://127.0.0.1:${server.port} is unreachable (no connection after 1000 ms: `)}`
      + `(connect ECONNREFUSED 127\\.0\\.0\\.1:${server.port}|no connection yet)${escape(`) and the cache directory ${empty} has no tag ${TAG}\n`)}$`));
  }, 90_000);

  it('a tag moved while a node was cut off from Redis reaches it when Redis is back', async () => {
    const [server, up] = await Promise.all([redis(), upstream()]);
    const prefix = freshPrefix();
    // The node reaches Redis through a TCP relay the test can cut: Redis itself keeps running.
    const relay = await tcpRelay(server.port);
    cleanup.push(() => relay.close());
    await push(V1, server.url, prefix);
    const gw = await node(nodeConfig(`redis://127.0.0.1:${relay.port}`, prefix, freshDir(), up));
    expect(await servedBy(gw)).toBe('version-one!');

    relay.cut();
    await push(V2, server.url, prefix); // published while the node hears nothing
    await new Promise((r) => setTimeout(r, 1500)); // two of its polls fail meanwhile
    expect(await servedBy(gw)).toBe('version-one!');
    expect(gw.lines.some((l) => l.msg === registryLine(V2))).toBe(false);

    relay.mend();
    expect(await eventually(async () => await servedBy(gw) === 'version-two!', 15_000)).toBe(true);
    await gw.waitFor((l) => l.msg === registryLine(V2), 'the registry swap', 5000);
  }, 90_000);

  it('a node keeps following its tag after reloads that change the registry settings, applied or rejected', async () => {
    const [server, up] = await Promise.all([redis(), upstream()]);
    const prefix = freshPrefix();
    await push(V1, server.url, prefix);
    const config = nodeConfig(server.url, prefix, freshDir(), up);
    const gw = await node(config);
    // Another cache directory: the registry client is replaced, and with it every watch.
    writeFileSync(config, readFileSync(nodeConfig(server.url, prefix, freshDir(), up)));
    gw.signal('SIGHUP');
    await gw.waitFor((l) => l.msg === 'configuration reloaded', 'the reload');
    await push(V2, server.url, prefix);
    expect(await eventually(async () => await servedBy(gw) === 'version-two!', 5000)).toBe(true);
    // A reload that is rejected after it opened its own registry client leaves the tag followed.
    const broken = JSON.parse(readFileSync(nodeConfig(server.url, prefix, freshDir(), up), 'utf8')) as Record<string, any>;
    broken.plugins.push({ name: 'junk', module: { redis: 'junk:none' } });
    broken.routes[0].filters.push('junk');
    writeFileSync(config, JSON.stringify(broken));
    gw.signal('SIGHUP');
    await gw.waitFor((l) => String(l.msg).startsWith('reload rejected'), 'the rejected reload');
    await push(V1, server.url, prefix);
    expect(await eventually(async () => await servedBy(gw) === 'version-one!', 5000)).toBe(true);
  }, 90_000);
});

/** A TCP relay to 127.0.0.1:`target`; cut() drops every connection and refuses new ones until mend(). */
async function tcpRelay(target: number): Promise<{ port: number; cut(): void; mend(): void; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let open = true;
  const server: Server = createServer((client) => {
    if (!open) return void client.destroy();
    const upstreamSocket = connect(target, '127.0.0.1');
    for (const s of [client, upstreamSocket]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => { sockets.delete(s); client.destroy(); upstreamSocket.destroy(); });
    }
    client.pipe(upstreamSocket).pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    port,
    cut: () => { open = false; for (const s of sockets) s.destroy(); },
    mend: () => { open = true; },
    close: () => new Promise((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
  };
}
